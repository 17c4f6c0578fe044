"""Pileup-mitigation events (HEPT's task): Pythia tt̄ + Poisson(μ) minimum bias, Delphes-like PF candidates,
written as Delphes-style ROOT files (docs/pileup_data.md)."""
