"""Pileup-mitigation data: Delphes PF files (HEPT's or partx's generated ones) -> the processed ROOT files
of the contract (docs/pileup_data.md)."""
