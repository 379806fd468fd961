/// A survey that pays points once per member.
public struct Survey: Hashable, Sendable, Codable, Identifiable {
    /// One question.
    public struct Question: Hashable, Sendable, Codable, Identifiable {
        /// What kind of answer a question takes.
        public enum Kind: Hashable, Sendable, Codable {
            /// One of the listed options.
            case choice([String])
            /// A whole number from 1 to the given maximum.
            case rating(maximum: Int)
            /// Free text of at most 500 characters.
            case text
        }

        /// The question's id within the survey.
        public var id: String
        /// The question.
        public var text: String
        /// What kind of answer it takes.
        public var kind: Question.Kind
        /// Whether it must be answered.
        public var isRequired: Bool

        /// Creates a question.
        public init(id: String, text: String, kind: Question.Kind, isRequired: Bool = true) {
            self.id = id
            self.text = text
            self.kind = kind
            self.isRequired = isRequired
        }

        private enum CodingKeys: String, CodingKey { case id, text, type, options, maximum, required }

        /// Decodes `{"id", "text", "type": "choice" | "rating" | "text", "options"?, "maximum"?, "required"?}`.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            self.id = try container.decode(String.self, forKey: .id)
            self.text = try container.decode(String.self, forKey: .text)
            self.isRequired = try container.decodeIfPresent(Bool.self, forKey: .required) ?? true
            switch try container.decode(String.self, forKey: .type) {
            case "choice": self.kind = .choice(try container.decode([String].self, forKey: .options))
            case "rating": self.kind = .rating(maximum: try container.decodeIfPresent(Int.self, forKey: .maximum) ?? 5)
            case "text": self.kind = .text
            case let other:
                throw DecodingError.dataCorruptedError(
                    forKey: .type, in: container,
                    debugDescription: "unknown question type \(other.quoted); use choice, rating or text")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(text, forKey: .text)
            try container.encode(isRequired, forKey: .required)
            switch kind {
            case .choice(let options):
                try container.encode("choice", forKey: .type)
                try container.encode(options, forKey: .options)
            case .rating(let maximum):
                try container.encode("rating", forKey: .type)
                try container.encode(maximum, forKey: .maximum)
            case .text:
                try container.encode("text", forKey: .type)
            }
        }
    }

    /// The survey's id.
    public var id: SurveyID
    /// Title shown to members.
    public var title: String
    /// The questions, in order.
    public var questions: [Question]
    /// Points paid for a complete response.
    public var points: Int
    /// Last moment a response is accepted; nil if open-ended.
    public var closesAt: Timestamp?

    /// Creates a survey.
    public init(id: SurveyID, title: String, questions: [Question], points: Int, closesAt: Timestamp? = nil) {
        self.id = id
        self.title = title
        self.questions = questions
        self.points = points
        self.closesAt = closesAt
    }

    /// Checks a set of answers: every required question answered, every answer valid for its question, no
    /// answer to a question the survey does not have. The rejection names the question.
    public func validate(_ answers: [String: String]) -> MutationRejection? {
        for questionID in answers.keys.sorted() where !questions.contains(where: { $0.id == questionID }) {
            return MutationRejection(.invalidAnswer, "survey '\(title)' has no question '\(questionID)'")
        }
        for question in questions {
            guard let answer = answers[question.id], !answer.isEmpty else {
                if question.isRequired {
                    return MutationRejection(.invalidAnswer, "question '\(question.id)' must be answered")
                }
                continue
            }
            switch question.kind {
            case .choice(let options) where !options.contains(answer):
                return MutationRejection(
                    .invalidAnswer,
                    "\(answer.quoted) is not an option of question '\(question.id)' (\(options.joined(separator: ", ")))"
                )
            case .rating(let maximum) where Int(answer).map({ !(1...maximum).contains($0) }) ?? true:
                return MutationRejection(
                    .invalidAnswer,
                    "question '\(question.id)' takes a whole number from 1 to \(maximum), not \(answer.quoted)")
            case .text where answer.inputLength > 500:
                return MutationRejection(
                    .invalidAnswer, "the answer to question '\(question.id)' is over 500 characters")
            default:
                continue
            }
        }
        return nil
    }
}

/// A member's response to a survey; one per member and survey.
public struct SurveyResponse: Hashable, Sendable, Codable {
    /// The survey.
    public var surveyID: SurveyID
    /// Answers by question id.
    public var answers: [String: String]
    /// When the member answered.
    public var answeredAt: Timestamp
    /// Points credited for it.
    public var points: Int

    /// Creates a response.
    public init(surveyID: SurveyID, answers: [String: String], answeredAt: Timestamp, points: Int) {
        self.surveyID = surveyID
        self.answers = answers
        self.answeredAt = answeredAt
        self.points = points
    }
}
