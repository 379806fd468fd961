/// This package's version, which every executable answers to `--version`.
public let loyaltyVersion = "0.10.0"
