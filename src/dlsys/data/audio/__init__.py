"""Synthetic audio for the course's four audio datasets: speech, speakers, noise bank, keywords.

`speech` is a source-filter synthesiser, `noise` the noise bank, `keywords` the command-word lexicon,
`sets` the four DatasetSpecs and their loaders, `calibration` the difficulty checks.
"""
