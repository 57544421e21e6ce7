import LedgerCore

extension DunningConfig {
  /// The seeds' rules with each invoice charged when it falls due rather than at the daily
  /// collection time: for tests about other rules, whose times read more simply so.
  static var chargedWhenDue: DunningConfig {
    var config = DunningConfig()
    config.collectionTime = nil
    return config
  }
}
