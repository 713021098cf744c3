"""Reports: the view model, its writers (HTML, Markdown, JUnit, SVG), results files, compare.

Python 3.10+ (controller only).  Writers depend on the model, never the reverse.
"""
