/// The programme and catalogue a new server starts with when given none: the same as `Fixtures/program.json` and
/// `Fixtures/catalogue.json` (a test checks that they stay equal).
public enum DefaultProgramme {
    /// `Fixtures/program.json`.
    public static let programJSON = #"""
        {
          "id": "de-retail",
          "name": "Bonus Plus",
          "currency": "EUR",
          "timeZone": "Europe/Berlin",
          "pointsPerCurrencyUnit": 1,
          "minimumRedemption": 100,
          "pendingDays": 14,
          "expiry": { "rule": "monthsAfterEarning", "months": 24 },
          "receiptClaimDays": 30,
          "offlineGrace": "72h",
          "allowances": { "share": 50, "cap": 1000, "lease": "168h" },
          "expiringSoonDays": 30,
          "tiers": {
            "ladder": [
              { "id": "classic", "name": "Classic", "threshold": 0 },
              { "id": "silber", "name": "Silber", "threshold": 1000 },
              { "id": "gold", "name": "Gold", "threshold": 3000 }
            ],
            "windowMonths": 12,
            "retentionMonths": 12,
            "downgrade": "oneDown"
          }
        }
        """#

    /// `Fixtures/catalogue.json`.
    public static let catalogueJSON = #"""
        {
          "offers": [
            {
              "id": "welcome-10",
              "title": "10% off your next purchase",
              "details": "One purchase, any department.",
              "segments": [],
              "validFrom": "2026-01-01T00:00:00Z",
              "validUntil": "2027-12-31T22:59:59Z",
              "activationRequired": true,
              "usesPerMember": 1
            },
            {
              "id": "coffee-double",
              "title": "Double points on coffee",
              "details": "Up to three times.",
              "segments": ["coffee-lovers"],
              "validFrom": "2026-01-01T00:00:00Z",
              "validUntil": "2027-06-30T21:59:59Z",
              "activationRequired": false,
              "usesPerMember": 3
            },
            {
              "id": "gold-lounge",
              "title": "Free drink in the Gold lounge",
              "details": "For Gold members.",
              "segments": ["gold"],
              "validFrom": "2026-01-01T00:00:00Z",
              "activationRequired": true,
              "usesPerMember": 1
            }
          ],
          "rewards": [
            { "id": "tote-bag", "title": "Bonus Plus tote bag", "cost": 300, "stock": 500, "isActive": true },
            { "id": "voucher-5", "title": "5 EUR shopping voucher", "cost": 500, "isActive": true },
            { "id": "voucher-20", "title": "20 EUR shopping voucher", "cost": 1800, "isActive": true }
          ],
          "surveys": [
            {
              "id": "store-visit",
              "title": "How was your visit?",
              "points": 50,
              "questions": [
                { "id": "rating", "text": "How would you rate your visit?", "type": "rating", "maximum": 5 },
                { "id": "store", "text": "Which store?", "type": "choice", "options": ["Berlin Mitte", "Hamburg", "München"] },
                { "id": "comment", "text": "Anything else?", "type": "text", "required": false }
              ]
            }
          ]
        }
        """#
}
