"""Data preparation and data checks: Kaldi-style data dirs, the synthetic mini corpus, corpus preps.

Importing this package needs only the standard library; the audio modules import numpy/scipy/soundfile.
"""
