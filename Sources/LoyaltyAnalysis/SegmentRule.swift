public import LoyaltyCore

/// A segment's rule: a condition over a member's figures, registration data, consents, tier and survey answers,
/// written in a small language (docs/analysis.md, "The segment language"):
///
/// ```
/// stage in (at-risk, lapsed) and monetary >= 200 and consent(marketing-push)
/// not consent(profiling) or (frequency > 4 and tier = gold)
/// answer(S-taste, q1) = "5" and age_band in ("25-34", "35-44")
/// ```
///
/// A rule is parsed and type-checked when it is defined: an unknown attribute, a value of the wrong type, an
/// unknown stage or consent, or a syntax error is refused with its column in the rule (``SegmentRuleError``).
/// Evaluation is total: a figure the member does not have (no purchase yet, no birth date) makes every comparison
/// with it false, `!=` too, so that a rule never selects a member on what is not known.
public struct SegmentRule: Sendable, Hashable, CustomStringConvertible {
    /// The rule as written.
    public let text: String
    let expression: Expression

    /// Parses and type-checks a rule.
    public init(_ text: String) throws(SegmentRuleError) {
        guard text.count <= Self.maximumLength else {
            throw SegmentRuleError(column: Self.maximumLength + 1, "a rule is at most \(Self.maximumLength) characters")
        }
        var parser = Parser(tokens: try Lexer.tokens(of: text), end: text.count + 1)
        let expression = try parser.rule()
        try expression.check()
        self.text = text
        self.expression = expression
    }

    /// The longest rule accepted, in characters.
    public static let maximumLength = 2_000

    public var description: String { text }

    /// Whether the member the facts describe is in the segment.
    public func matches(_ facts: MemberFacts) -> Bool { expression.evaluate(facts) }

    /// What the rule reads, each with the member's value (`-` where the member has none), in the order the rule
    /// names them: the values that put a member in the segment, or kept it out.
    public func explanation(for facts: MemberFacts) -> [String] {
        var seen: Set<Operand> = []
        var lines: [String] = []
        expression.visitOperands { operand in
            guard seen.insert(operand).inserted else { return }
            lines.append("\(operand) = \(operand.value(in: facts).map(String.init(describing:)) ?? "-")")
        }
        return lines
    }

    /// What the rule reads: its attributes, and its `consent(...)` and `answer(...)` operands as written.
    public var attributes: Set<String> {
        var names: Set<String> = []
        expression.visitOperands { names.insert($0.description) }
        return names
    }
}

/// A rule refused: what is wrong, and where (a 1-based column of the rule's characters).
public struct SegmentRuleError: Error, Hashable, Sendable, CustomStringConvertible {
    public let column: Int
    public let message: String

    init(column: Int, _ message: String) {
        self.column = column
        self.message = message
    }

    public var description: String { "at column \(column): \(message)" }
}

// MARK: - Attributes

/// The type of what a rule reads.
public enum AttributeType: String, Sendable, Hashable {
    case number, text, stage, truth
}

/// What a segment rule may read, and the type of each.
public enum SegmentAttributes {
    /// Attributes by name, with their types and what they are (docs/analysis.md lists the same).
    public static let all: [String: (type: AttributeType, meaning: String)] = [
        "recency": (.number, "days since the last purchase"),
        "frequency": (.number, "purchases in the last 12 months"),
        "monetary": (.number, "revenue in the last 12 months, in the programme's currency"),
        "r": (.number, "RFM recency score, 1 to 5 (5: most recent)"),
        "f": (.number, "RFM frequency score, 1 to 5"),
        "m": (.number, "RFM monetary score, 1 to 5"),
        "earned": (.number, "points earned, all time"),
        "redeemed": (.number, "points redeemed, all time"),
        "expired": (.number, "points expired, all time"),
        "held": (.number, "points held now (available and pending)"),
        "days_since_redemption": (.number, "days since the last redemption"),
        "satisfaction": (.number, "mean of the member's rating answers"),
        "value": (.number, "customer value: revenue of the last 12 months"),
        "predicted_value": (.number, "predicted revenue of the next 12 months"),
        "age": (.number, "age in whole years, from the birth date"),
        "age_band": (.text, "under-25, 25-34, 35-44, 45-54, 55-64 or 65+"),
        "postcode_area": (.text, "the first two digits of the postcode in the address"),
        "tier": (.text, "the tier's id"),
        "stage": (.stage, "lifecycle stage: new, active, at-risk, lapsed or won-back"),
    ]

    static func closest(to name: String) -> String? {
        all.keys.min { distance(name, $0) < distance(name, $1) }.flatMap { distance(name, $0) <= 2 ? $0 : nil }
    }

    /// Edit distance, for "did you mean".
    private static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(a.count, 1) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in 1...max(b.count, 1) where !b.isEmpty {
                let kept = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = kept
            }
        }
        return row[b.count]
    }
}

// MARK: - The syntax tree

/// What a comparison reads.
enum Operand: Hashable, Sendable, CustomStringConvertible {
    case attribute(String)
    case consent(ConsentKind)
    case answer(survey: String, question: String)

    var type: AttributeType {
        switch self {
        case .attribute(let name): SegmentAttributes.all[name]?.type ?? .text
        case .consent: .truth
        case .answer: .text
        }
    }

    var description: String {
        switch self {
        case .attribute(let name): name
        case .consent(let kind): "consent(\(kind.rawValue))"
        case .answer(let survey, let question): "answer(\(survey), \(question))"
        }
    }

    func value(in facts: MemberFacts) -> FactValue? {
        switch self {
        case .attribute(let name): facts.value(of: name)
        case .consent(let kind): .truth(facts.consents.contains(kind))
        case .answer(let survey, let question): facts.answers[survey]?[question].map(FactValue.text)
        }
    }
}

/// A literal on the right of a comparison, where it was written.
struct Literal: Hashable, Sendable {
    enum Value: Hashable, Sendable {
        case number(Double)
        case word(String)
        case quoted(String)
    }
    let value: Value
    let column: Int
}

enum Comparison: String, Sendable, Hashable {
    case equal = "="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
}

indirect enum Expression: Hashable, Sendable {
    case and(Expression, Expression)
    case or(Expression, Expression)
    case not(Expression)
    /// A truth operand alone (`consent(profiling)`).
    case holds(Operand, column: Int)
    case compare(Operand, Comparison, Literal, column: Int)
    case within(Operand, [Literal], column: Int)

    func visitOperands(_ visit: (Operand) -> Void) {
        switch self {
        case .and(let left, let right), .or(let left, let right):
            left.visitOperands(visit)
            right.visitOperands(visit)
        case .not(let inner): inner.visitOperands(visit)
        case .holds(let operand, _), .compare(let operand, _, _, _), .within(let operand, _, _): visit(operand)
        }
    }

    /// The type check: every comparison compares values of its operand's type.
    func check() throws(SegmentRuleError) {
        switch self {
        case .and(let left, let right), .or(let left, let right):
            try left.check()
            try right.check()
        case .not(let inner): try inner.check()
        case .holds(let operand, let column):
            guard operand.type == .truth else {
                throw SegmentRuleError(
                    column: column,
                    "\(operand) is a \(operand.type.rawValue), not a condition: compare it (for example \(operand) "
                        + (operand.type == .number ? ">= 1)" : "= something)"))
            }
        case .compare(let operand, let comparison, let literal, let column):
            if operand.type == .truth {
                throw SegmentRuleError(
                    column: column, "\(operand) is a condition already: write it alone, or with not before it")
            }
            if operand.type != .number, ![.equal, .notEqual].contains(comparison) {
                throw SegmentRuleError(
                    column: column, "\(operand) is a \(operand.type.rawValue): compare it with = or !=, or use in")
            }
            try literal.check(against: operand)
        case .within(let operand, let literals, let column):
            if operand.type == .truth {
                throw SegmentRuleError(column: column, "\(operand) is a condition: it cannot be in a list")
            }
            for literal in literals { try literal.check(against: operand) }
        }
    }

    func evaluate(_ facts: MemberFacts) -> Bool {
        switch self {
        case .and(let left, let right): left.evaluate(facts) && right.evaluate(facts)
        case .or(let left, let right): left.evaluate(facts) || right.evaluate(facts)
        case .not(let inner): !inner.evaluate(facts)
        case .holds(let operand, _): operand.value(in: facts) == .truth(true)
        case .compare(let operand, let comparison, let literal, _):
            operand.value(in: facts).map { $0.compare(comparison, literal.value) } ?? false
        case .within(let operand, let literals, _):
            operand.value(in: facts).map { value in literals.contains { value.compare(.equal, $0.value) } } ?? false
        }
    }
}

extension Literal {
    func check(against operand: Operand) throws(SegmentRuleError) {
        switch (operand.type, value) {
        case (.number, .number), (.text, .word), (.text, .quoted): return
        case (.text, .number(let number)):
            throw SegmentRuleError(
                column: column, "\(operand) is text: write the value in quotes (\"\(Self.plain(number))\")")
        case (.number, _):
            throw SegmentRuleError(column: column, "\(operand) is a number: compare it with a number")
        case (.stage, .word(let word)), (.stage, .quoted(let word)):
            guard LifecycleStage(rawValue: word) != nil else {
                throw SegmentRuleError(
                    column: column,
                    "\(word.quoted) is not a stage (one of \(LifecycleStage.allCases.map(\.rawValue).joined(separator: ", ")))"
                )
            }
        case (.stage, .number):
            throw SegmentRuleError(column: column, "stage is a lifecycle stage, not a number")
        case (.truth, _):
            throw SegmentRuleError(column: column, "\(operand) is a condition, not a value to compare")
        }
    }

    static func plain(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }
}

// MARK: - Lexer

struct Token: Hashable {
    enum Kind: Hashable {
        case word(String)
        case number(Double)
        case quoted(String)
        case comparison(Comparison)
        case open, close, comma
    }
    let kind: Kind
    /// 1-based column of its first character.
    let column: Int
}

enum Lexer {
    static func tokens(of text: String) throws(SegmentRuleError) -> [Token] {
        let characters = Array(text)
        var tokens: [Token] = []
        var index = 0
        while index < characters.count {
            let character = characters[index]
            let column = index + 1
            if character.isWhitespace {
                index += 1
                continue
            }
            switch character {
            case "(":
                tokens.append(Token(kind: .open, column: column))
                index += 1
            case ")":
                tokens.append(Token(kind: .close, column: column))
                index += 1
            case ",":
                tokens.append(Token(kind: .comma, column: column))
                index += 1
            case "=", "<", ">", "!":
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                let two = next == "=" ? String([character, "="]) : String(character)
                guard let comparison = Comparison(rawValue: two) else {
                    throw SegmentRuleError(column: column, "\"!\" must be followed by \"=\" (!= is not equal)")
                }
                tokens.append(Token(kind: .comparison(comparison), column: column))
                index += two.count
            case "\"", "'":
                var end = index + 1
                while end < characters.count, characters[end] != character { end += 1 }
                guard end < characters.count else {
                    throw SegmentRuleError(column: column, "this quoted value is not closed")
                }
                tokens.append(Token(kind: .quoted(String(characters[(index + 1)..<end])), column: column))
                index = end + 1
            default:
                guard Self.isWordCharacter(character) else {
                    throw SegmentRuleError(column: column, "unexpected character \(String(character).quoted)")
                }
                var end = index
                while end < characters.count, Self.isWordCharacter(characters[end]) { end += 1 }
                let word = String(characters[index..<end])
                if let number = Double(word), word.first?.isNumber == true || word.first == "-" && word.count > 1 {
                    tokens.append(Token(kind: .number(number), column: column))
                } else if word.first?.isNumber == true {
                    throw SegmentRuleError(column: column, "\(word.quoted) is not a number")
                } else {
                    tokens.append(Token(kind: .word(word), column: column))
                }
                index = end
            }
        }
        return tokens
    }

    static func isWordCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "_-.+".contains(character))
    }
}

// MARK: - Parser

/// rule := or; or := and ("or" and)*; and := unary ("and" unary)*; unary := "not" unary | primary;
/// primary := "(" or ")" | operand [comparison literal | "in" "(" literal ("," literal)* ")"].
struct Parser {
    let tokens: [Token]
    /// The column just after the rule, for errors at its end.
    let end: Int
    var position = 0

    init(tokens: [Token], end: Int) {
        self.tokens = tokens
        self.end = end
    }

    mutating func rule() throws(SegmentRuleError) -> Expression {
        guard !tokens.isEmpty else { throw SegmentRuleError(column: 1, "the rule is empty") }
        let expression = try or()
        if let extra = peek {
            throw SegmentRuleError(column: extra.column, "expected and, or, or the end of the rule here")
        }
        return expression
    }

    private var peek: Token? { position < tokens.count ? tokens[position] : nil }
    private var column: Int { peek?.column ?? end }

    private mutating func next() -> Token? {
        defer { position += 1 }
        return peek
    }

    private mutating func keyword(_ word: String) -> Bool {
        if case .word(let found)? = peek?.kind, found.lowercased() == word {
            position += 1
            return true
        }
        return false
    }

    private mutating func expect(_ kind: Token.Kind, _ what: String) throws(SegmentRuleError) {
        guard peek?.kind == kind else { throw SegmentRuleError(column: column, "expected \(what) here") }
        position += 1
    }

    private mutating func or() throws(SegmentRuleError) -> Expression {
        var expression = try and()
        while keyword("or") { expression = .or(expression, try and()) }
        return expression
    }

    private mutating func and() throws(SegmentRuleError) -> Expression {
        var expression = try unary()
        while keyword("and") { expression = .and(expression, try unary()) }
        return expression
    }

    private mutating func unary() throws(SegmentRuleError) -> Expression {
        if keyword("not") { return .not(try unary()) }
        return try primary()
    }

    private mutating func primary() throws(SegmentRuleError) -> Expression {
        let start = column
        if peek?.kind == .open {
            position += 1
            let inner = try or()
            try expect(.close, "a closing parenthesis")
            return inner
        }
        let operand = try self.operand()
        if case .comparison(let comparison)? = peek?.kind {
            position += 1
            return .compare(operand, comparison, try literal(), column: start)
        }
        if keyword("in") {
            try expect(.open, "an opening parenthesis after in")
            var literals = [try literal()]
            while peek?.kind == .comma {
                position += 1
                literals.append(try literal())
            }
            try expect(.close, "a comma or a closing parenthesis")
            return .within(operand, literals, column: start)
        }
        return .holds(operand, column: start)
    }

    private mutating func operand() throws(SegmentRuleError) -> Operand {
        let start = column
        guard case .word(let name)? = next()?.kind else {
            throw SegmentRuleError(column: start, "expected an attribute, consent(...), answer(...), not or ( here")
        }
        switch name.lowercased() {
        case "and", "or", "in":
            throw SegmentRuleError(column: start, "expected an attribute before \(name)")
        case "consent":
            try expect(.open, "an opening parenthesis after consent")
            let kindColumn = column
            guard case .word(let kind)? = next()?.kind, let consent = ConsentKind(rawValue: kind) else {
                throw SegmentRuleError(
                    column: kindColumn,
                    "expected a consent (one of \(ConsentKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            try expect(.close, "a closing parenthesis")
            return .consent(consent)
        case "answer":
            try expect(.open, "an opening parenthesis after answer")
            let survey = try identifier("a survey id")
            try expect(.comma, "a comma between the survey and the question")
            let question = try identifier("a question id")
            try expect(.close, "a closing parenthesis")
            return .answer(survey: survey, question: question)
        default:
            guard SegmentAttributes.all[name] != nil else {
                let hint = SegmentAttributes.closest(to: name).map { " (did you mean \($0)?)" } ?? ""
                throw SegmentRuleError(column: start, "unknown attribute \(name.quoted)\(hint)")
            }
            return .attribute(name)
        }
    }

    private mutating func identifier(_ what: String) throws(SegmentRuleError) -> String {
        let start = column
        switch next()?.kind {
        case .word(let word)?, .quoted(let word)?: return word
        default: throw SegmentRuleError(column: start, "expected \(what) here")
        }
    }

    private mutating func literal() throws(SegmentRuleError) -> Literal {
        let start = column
        switch next()?.kind {
        case .number(let number)?: return Literal(value: .number(number), column: start)
        case .quoted(let text)?: return Literal(value: .quoted(text), column: start)
        case .word(let word)? where !["and", "or", "not", "in"].contains(word.lowercased()):
            return Literal(value: .word(word), column: start)
        default: throw SegmentRuleError(column: start, "expected a value here")
        }
    }
}
