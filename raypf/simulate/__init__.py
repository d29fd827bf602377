"""Built-in data source: Pythia8 events through a fast ATLAS-like calorimeter, written as MLTree ROOT files."""
