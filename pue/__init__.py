"""Pure PUE computation (ISO/IEC 30134-2): pandas frames in, frozen results out.

No I/O and no clock reads: every period and every "now" is passed in.
"""
