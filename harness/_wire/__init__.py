"""Optional engine: packet capture and crafted packets with scapy (behind ``harness.packets``).

Python 3.7+ (runs in workers).
"""
