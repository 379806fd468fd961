import LoyaltyAnalysis
import LoyaltyCore
import Testing

@Suite struct SegmentRuleTests {
    /// A member at risk, 75 days since the last purchase, 6 purchases and 240.00 in 12 months, tier gold, who allows
    /// push messages (and nothing else) and rated survey S-taste's q1 a 5.
    static func facts(
        stage: LifecycleStage = .atRisk, monetary: Int64 = 24_000, recency: Int? = 75,
        consents: Set<ConsentKind> = [.marketingPush], tier: String? = "gold",
        answers: [String: [String: String]] = ["S-taste": ["q1": "5"]]
    ) -> MemberFacts {
        let history = MemberHistory(memberID: MemberID("m-1"), enrolledAt: Timestamp(millisecondsSince1970: 0))
        var figures = MemberFigures(history, at: Timestamp(millisecondsSince1970: 0))
        figures.stage = stage
        figures.monetary = Money(minorUnits: monetary)
        figures.recencyDays = recency
        figures.frequency = 6
        figures.tier = tier
        return MemberFacts(figures: figures, consents: consents, answers: answers)
    }

    @Test func theIssuesExampleSelectsWhatItSays() throws {
        let rule = try SegmentRule("stage in (at-risk, lapsed) and monetary >= 200 and consent(marketing-push)")
        #expect(rule.matches(Self.facts()))
        #expect(!rule.matches(Self.facts(stage: .active)))
        #expect(!rule.matches(Self.facts(monetary: 19_999)))
        #expect(rule.matches(Self.facts(monetary: 20_000)), "200.00 is >= 200")
        #expect(!rule.matches(Self.facts(consents: [])))
    }

    @Test(
        arguments: [
            ("not consent(profiling)", true),
            ("consent(profiling) or tier = gold", true),
            ("not (tier = gold or frequency > 5)", false),
            ("tier != silver and frequency between", nil),
            ("answer(S-taste, q1) = \"5\"", true),
            ("answer('S-taste', 'q1') in ('4', '5')", true),
            ("answer(S-taste, q2) = \"5\"", false),
            ("frequency = 6 and recency < 76 and recency > 74.5", true),
            ("NOT tier = gold OR stage = at-risk", true),
        ] as [(String, Bool?)])
    func rulesEvaluate(rule text: String, expected: Bool?) throws {
        guard let expected else {
            #expect(throws: SegmentRuleError.self) { try SegmentRule(text) }
            return
        }
        #expect(try SegmentRule(text).matches(Self.facts()) == expected, "\(text)")
    }

    /// A figure the member does not have selects nobody, whatever the comparison.
    @Test func aMissingFigureMakesEveryComparisonFalse() throws {
        let none = Self.facts(recency: nil, tier: nil)
        for text in ["recency < 30", "recency >= 0", "recency != 30", "tier = gold", "tier != gold", "tier in (gold)"] {
            #expect(try !SegmentRule(text).matches(none), "\(text)")
        }
        #expect(try SegmentRule("not recency < 30").matches(none), "not of a false comparison is true")
    }

    @Test(
        arguments: [
            ("monetry >= 200", 1, "unknown attribute 'monetry' (did you mean monetary?)"),
            ("stage = at-risk and zzzz > 1", 21, "unknown attribute 'zzzz'"),
            ("stage > 3", 1, "stage is a stage: compare it with = or !=, or use in"),
            ("stage in (at-risk, dormant)", 20, "'dormant' is not a stage"),
            ("monetary >= gold", 13, "monetary is a number: compare it with a number"),
            ("tier = 2", 8, "tier is text: write the value in quotes (\"2\")"),
            ("tier < gold", 1, "tier is a text: compare it with = or !=, or use in"),
            ("frequency", 1, "frequency is a number, not a condition"),
            ("consent(profiling) = true", 1, "consent(profiling) is a condition already"),
            (
                "consent(newsletter)", 9,
                "expected a consent (one of marketing-email, marketing-sms, marketing-push, profiling)"
            ),
            ("(stage = new", 13, "expected a closing parenthesis here"),
            ("stage = new tier = gold", 13, "expected and, or, or the end of the rule here"),
            ("", 1, "the rule is empty"),
            ("   ", 1, "the rule is empty"),
            ("frequency ! 3", 11, "\"!\" must be followed by \"=\""),
            ("tier = \"gold", 8, "this quoted value is not closed"),
            ("frequency > 3 and", 18, "expected an attribute, consent(...), answer(...), not or ( here"),
            ("frequency > 12abc", 13, "'12abc' is not a number"),
            ("frequency > 3 ; drop", 15, "unexpected character ';'"),
            ("stage in ()", 11, "expected a value here"),
            ("answer(S-taste q1) = 5", 16, "expected a comma between the survey and the question here"),
        ] as [(String, Int, String)])
    func badRulesAreRefusedWithTheirColumn(rule text: String, column: Int, message: String) {
        do {
            _ = try SegmentRule(text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.column == column, "\(text): \(error)")
            #expect(error.message.contains(message), "\(text): \(error)")
        }
    }

    @Test func anOverlongRuleIsRefused() {
        let long = Array(repeating: "frequency > 1", count: 200).joined(separator: " and ")
        #expect(throws: SegmentRuleError.self) { try SegmentRule(long) }
    }

    @Test func theExplanationGivesEachValueTheRuleReads() throws {
        let rule = try SegmentRule(
            "stage in (at-risk, lapsed) and monetary >= 200 and consent(marketing-push) and recency > 60 and stage != new"
        )
        #expect(
            rule.explanation(for: Self.facts())
                == ["stage = at-risk", "monetary = 240", "consent(marketing-push) = true", "recency = 75"])
        #expect(rule.explanation(for: Self.facts(recency: nil)).contains("recency = -"))
    }
}
