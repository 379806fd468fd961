public import Foundation

/// What the programme offers every member: offers, rewards and surveys (loaded from `Fixtures/catalogue.json`).
public struct Catalogue: Hashable, Sendable, Codable {
    /// Offers.
    public var offers: [Offer]
    /// Rewards.
    public var rewards: [Reward]
    /// Surveys.
    public var surveys: [Survey]

    /// Creates a catalogue.
    public init(offers: [Offer] = [], rewards: [Reward] = [], surveys: [Survey] = []) {
        self.offers = offers
        self.rewards = rewards
        self.surveys = surveys
    }

    /// Decodes a catalogue from JSON and validates it.
    public static func decode(json: Data) throws -> Catalogue {
        let catalogue = try JSONDecoder().decode(Catalogue.self, from: json)
        try catalogue.validate()
        return catalogue
    }

    /// Checks ids, prices, windows and questions; the error names the first item that is wrong.
    public func validate() throws(LoyaltyError) {
        func require(_ condition: Bool, _ message: String) throws(LoyaltyError) {
            if !condition { throw LoyaltyError(.invalidInput, "catalogue: \(message)") }
        }
        for offer in offers {
            try require(offer.id.isWellFormed, "offer id '\(offer.id)' is not a valid id")
            try require(!offer.title.isEmpty, "offer '\(offer.id)' needs a title")
            try require(
                offer.segments.allSatisfy { Identifier<Offer>($0).isWellFormed },
                "offer '\(offer.id)': segments must be ids of letters, digits, '-', '_', '.' or ':'")
            try require((1...1000).contains(offer.usesPerMember), "offer '\(offer.id)': usesPerMember must be 1...1000")
            try require(
                offer.validUntil.map { $0 > offer.validFrom } ?? true, "offer '\(offer.id)' ends before it starts")
        }
        for reward in rewards {
            try require(reward.id.isWellFormed, "reward id '\(reward.id)' is not a valid id")
            try require(
                (1...10_000_000).contains(reward.cost), "reward '\(reward.id)': cost must be 1...10000000 points")
            try require(reward.stock.map { $0 >= 0 } ?? true, "reward '\(reward.id)': stock must not be negative")
        }
        for survey in surveys {
            try require(survey.id.isWellFormed, "survey id '\(survey.id)' is not a valid id")
            try require(!survey.questions.isEmpty, "survey '\(survey.id)' has no questions")
            try require((0...100_000).contains(survey.points), "survey '\(survey.id)': points must be 0...100000")
            for question in survey.questions {
                if case .rating(let maximum) = question.kind {
                    try require(
                        (2...10).contains(maximum),
                        "survey '\(survey.id)': question '\(question.id)' rates from 1 to 2...10, not \(maximum)")
                }
            }
            try require(
                Set(survey.questions.map(\.id)).count == survey.questions.count,
                "survey '\(survey.id)' has two questions with the same id")
        }
        try require(Set(offers.map(\.id)).count == offers.count, "two offers share an id")
        try require(Set(rewards.map(\.id)).count == rewards.count, "two rewards share an id")
        try require(Set(surveys.map(\.id)).count == surveys.count, "two surveys share an id")
    }
}

/// What a member gives when enrolling.
public struct Registration: Hashable, Sendable, Codable {
    /// The member's name.
    public var name: String
    /// The e-mail address to sign in with.
    public var email: String
    /// A phone number, if given.
    public var phone: String?
    /// A birth date (`YYYY-MM-DD`), if given.
    public var birthdate: String?
    /// A postal address, if given.
    public var address: String?

    /// Creates a registration.
    public init(name: String, email: String, phone: String? = nil, birthdate: String? = nil, address: String? = nil) {
        self.name = name
        self.email = email
        self.phone = phone
        self.birthdate = birthdate
        self.address = address
    }

    /// The fields as profile values, each validated like a profile edit; the error names the first bad field.
    public func profileValues(today: CalendarDate) throws(MutationRejection) -> [ProfileField: String] {
        var values: [ProfileField: String] = [:]
        let given: [(ProfileField, String?)] = [
            (.name, name), (.email, email), (.phone, phone), (.birthdate, birthdate), (.address, address),
        ]
        for (field, value) in given where value != nil {
            switch field.validate(value, today: today) {
            case .success(let cleaned): values[field] = cleaned
            case .failure(let rejection): throw rejection
            }
        }
        return values
    }
}
