import LedgerCore
import LedgerSQLite

/// A card as given by the processor when a customer saves it.
public struct NewCard: Sendable {
  public var token: String
  public var brand: CardBrand
  public var last4: String
  public var expiry: CardExpiry
  public var postalCode: String?
  public var country: String?

  public init(token: String, brand: CardBrand, last4: String, expiry: CardExpiry, postalCode: String?, country: String?)
  {
    self.token = token
    self.brand = brand
    self.last4 = last4
    self.expiry = expiry
    self.postalCode = postalCode
    self.country = country
  }
}

extension LedgerStore {
  /// Saves a card for an account. The first active card becomes the default on its own.
  /// A token that looks like a card number, or an expiry already past, is refused.
  public func addCard(account accountID: Int64, _ card: NewCard, actor: Actor) throws -> Card {
    _ = try CardRules.token(card.token)
    _ = try CardRules.last4(card.last4)
    if let postal = card.postalCode { _ = try Validate.postalCode(postal) }
    if let country = card.country { _ = try Validate.country(country) }
    guard !card.expiry.isExpired(on: today) else {
      throw InputError(
        field: "--expiry", rule: "\(card.expiry) is in the past; a card past its expiry month cannot be charged")
    }
    return try write {
      _ = try requireAccount(accountID)
      if let existing = try db.scalarInt("SELECT id FROM cards WHERE token = ?", card.token) {
        throw InputError(field: "--token", rule: "this token is already registered (card \(existing))")
      }
      let makeDefault = CardPolicy.becomesDefault(existing: try cardSummaries(account: accountID))
      let at = now
      try db.run(
        """
        INSERT INTO cards (account_id, token, brand, last4, exp_month, exp_year, postal_code, country, status, is_default, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)
        """,
        accountID, card.token, card.brand.rawValue, card.last4, card.expiry.month, card.expiry.year, card.postalCode,
        card.country, makeDefault, at, at)
      let id = db.lastInsertRowID
      let label = "\(card.brand.rawValue) •••• \(card.last4)"
      try recordEvent(
        account: accountID, actor: actor, kind: "card_added",
        reason: "card \(id) (\(label), expires \(card.expiry)) added"
          + (makeDefault ? " and made default as the first active card" : ""),
        data: ["card_id": String(id)])
      return try requireCard(id)
    }
  }

  public func card(id: Int64) throws -> Card? {
    try db.queryOne("SELECT * FROM cards WHERE id = ?", id).map(card(from:))
  }

  func requireCard(_ id: Int64, field: String = "card") throws -> Card {
    guard let card = try card(id: id) else { throw NotFoundError(field: field, value: String(id)) }
    return card
  }

  /// An account's cards, oldest first; removed cards only when asked for.
  public func cards(account: Int64, includeRemoved: Bool = false) throws -> [Card] {
    try db.query(
      "SELECT * FROM cards WHERE account_id = ? AND (? OR status <> 'removed') ORDER BY id", account, includeRemoved
    ).map(card(from:))
  }

  func cardSummaries(account: Int64) throws -> [CardSummary] {
    try db.query(
      "SELECT id, status, exp_month, exp_year, is_default FROM cards WHERE account_id = ? AND status <> 'removed' ORDER BY id",
      account
    ).map { row in
      CardSummary(
        id: try row.int("id"), status: CardStatus(rawValue: try row.string("status")) ?? .removed,
        expiry: try CardExpiry(month: Int(try row.int("exp_month")), year: Int(try row.int("exp_year"))),
        isDefault: try row.bool("is_default"))
    }
  }

  /// Makes `cardID` its account's default card.
  public func setDefaultCard(_ cardID: Int64, actor: Actor) throws -> Card {
    try write {
      let card = try requireCard(cardID)
      guard card.status != .removed else {
        throw StateError(subject: "card \(cardID)", rule: "was removed; a removed card cannot become the default")
      }
      if card.isDefault { return card }
      let at = now
      // Clear the old default first: the unique index allows one default per account.
      try db.run(
        "UPDATE cards SET is_default = 0, updated_at = ? WHERE account_id = ? AND is_default = 1", at, card.accountID)
      try db.run("UPDATE cards SET is_default = 1, updated_at = ? WHERE id = ?", at, cardID)
      try recordEvent(
        account: card.accountID, actor: actor, kind: "card_default_changed",
        reason: "card \(cardID) (\(card.brand.rawValue) •••• \(card.last4)) made the default",
        data: ["card_id": String(cardID)])
      return try requireCard(cardID)
    }
  }

  /// Removes a card. Removing the default promotes the next active card (oldest unexpired
  /// first); the account is left without a default only when no active card remains.
  public func removeCard(_ cardID: Int64, actor: Actor) throws -> (removed: Card, newDefault: Card?) {
    try write {
      let card = try requireCard(cardID)
      guard card.status != .removed else { throw StateError(subject: "card \(cardID)", rule: "is already removed") }
      let at = now
      try db.run(
        "UPDATE cards SET status = 'removed', is_default = 0, removed_at = ?, updated_at = ? WHERE id = ?", at, at,
        cardID)
      var promoted: Card?
      if card.isDefault, let next = CardPolicy.successor(among: try cardSummaries(account: card.accountID), on: today) {
        try db.run("UPDATE cards SET is_default = 1, updated_at = ? WHERE id = ?", at, next)
        promoted = try requireCard(next)
      }
      var reason = "card \(cardID) (\(card.brand.rawValue) •••• \(card.last4)) removed"
      if let promoted {
        reason += "; card \(promoted.id) (\(promoted.brand.rawValue) •••• \(promoted.last4)) is now the default"
      } else if card.isDefault {
        reason += "; no active card is left to become the default"
      }
      try recordEvent(
        account: card.accountID, actor: actor, kind: "card_removed", reason: reason, data: ["card_id": String(cardID)])
      return (try requireCard(cardID), promoted)
    }
  }

  func card(from row: Row) throws -> Card {
    let month = try row.int("exp_month")
    return Card(
      id: try row.int("id"), accountID: try row.int("account_id"), token: try row.string("token"),
      brand: CardBrand(rawValue: try row.string("brand")) ?? .other, last4: try row.string("last4"),
      expiry: (month < 10 ? "0" : "") + "\(month)/\(try row.int("exp_year"))",
      postalCode: try row.optionalString("postal_code"), country: try row.optionalString("country"),
      status: CardStatus(rawValue: try row.string("status")) ?? .removed, isDefault: try row.bool("is_default"),
      createdAt: try row.string("created_at"))
  }
}

extension LedgerStore {
  /// Updates a card's expiry or token (the customer re-entered it): a card that needed an
  /// update is usable again.
  public func updateCard(_ cardID: Int64, expiry: CardExpiry?, token: String?, actor: Actor) throws -> Card {
    if let token { _ = try CardRules.token(token) }
    if let expiry, expiry.isExpired(on: today) {
      throw InputError(
        field: "--expiry", rule: "\(expiry) is in the past; a card past its expiry month cannot be charged")
    }
    guard expiry != nil || token != nil else {
      throw InputError(field: "--expiry", rule: "give a new --expiry or --token (or both)")
    }
    return try write {
      let card = try requireCard(cardID)
      guard card.status != .removed else {
        throw StateError(subject: "card \(cardID)", rule: "was removed; add a new card instead")
      }
      if let token, token != card.token, let other = try db.scalarInt("SELECT id FROM cards WHERE token = ?", token) {
        throw InputError(field: "--token", rule: "this token is already registered (card \(other))")
      }
      try db.run(
        """
        UPDATE cards SET token = coalesce(?, token), exp_month = coalesce(?, exp_month), exp_year = coalesce(?, exp_year),
          status = 'active', updated_at = ? WHERE id = ?
        """, token, expiry?.month, expiry?.year, now, cardID)
      let updated = try requireCard(cardID)
      if try !cardSummaries(account: card.accountID).contains(where: { $0.isDefault }) {
        try db.run("UPDATE cards SET is_default = 1 WHERE id = ?", cardID)
      }
      try recordEvent(
        account: card.accountID, actor: actor, kind: "card_updated",
        reason: "card \(cardID) (\(card.brand.rawValue) •••• \(card.last4)) updated, expires \(updated.expiry)"
          + (card.status == .needsUpdate ? "; usable again" : ""), data: ["card_id": String(cardID)])
      return try requireCard(cardID)
    }
  }
}
