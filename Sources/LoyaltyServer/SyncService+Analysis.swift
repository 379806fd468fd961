internal import Foundation
internal import Logging
public import LoyaltyAnalysis
public import LoyaltyCore

/// A segment as the operator defined it, with its size at the job's runs.
public struct SegmentDefinition: Codable, Sendable, Hashable {
    public var name: String
    public var rule: String
    public var createdAt: Timestamp
    /// Members in the segment after the last run (nil before the first run since it was defined).
    public var size: Int?
    /// Its size at the run before (for "change since last run").
    public var previousSize: Int?
    /// Sizes over time, one per run that changed the segment or every run, newest last (at most 400).
    public var sizes: [SegmentSize]

    public struct SegmentSize: Codable, Sendable, Hashable {
        public var at: Timestamp
        public var size: Int
    }
}

/// What the segment job stored for one member (docs/analysis.md, "The segment job").
public struct MemberAnalysis: Codable, Sendable, Hashable {
    /// When it was computed.
    public var computedAt: Timestamp
    /// The figures; nil while the member has not given the `profiling` consent.
    public var figures: MemberFigures?
    /// Why there are no figures or rule-based segments.
    public var excluded: String?
    /// The stage and when the member entered it; nil without figures.
    public var stage: LifecycleStage?
    public var stageSince: Timestamp?
    /// Stage changes, oldest first (at most 50).
    public var stages: [StageChange]
    /// The rule-based segments the member is in, with when they entered.
    public var segments: [String: Timestamp]
    /// For each of those, the values its rule read (`monetary = 240`): why the member is in it.
    public var reasons: [String: [String]] = [:]
    /// The member's tier at this run (kept for every member: running the programme needs it), and the changes of
    /// tier the job saw, oldest first (at most 50; nil in an analysis stored before they were kept).
    public var tier: String?
    public var tierChanges: [TierChange]?

    public struct StageChange: Codable, Sendable, Hashable {
        public var stage: LifecycleStage
        public var at: Timestamp
    }
}

/// What a run of the segment job did.
public struct SegmentJobReport: Sendable, Hashable {
    public var analysed = 0
    public var entered = 0
    public var left = 0
    public var excluded = 0
}

extension SyncService {
    /// The names a segment may have: as the offers' segment ids.
    static func checkSegmentName(_ name: String) throws {
        guard Identifier<Offer>(name).isWellFormed, name.count <= 64 else {
            throw APIFailure(
                .unprocessable, "a segment's name is 1 to 64 letters, digits, '-', '_', '.' or ':' (got \(name.quoted))"
            )
        }
    }

    /// Defines a rule-based segment; the rule is checked now (its error names the column) and applied by the next
    /// run of the segment job.
    public func defineSegment(name: String, rule text: String) async throws -> SegmentDefinition {
        try Self.checkSegmentName(name)
        do {
            _ = try SegmentRule(text)
        } catch {
            throw APIFailure(.unprocessable, "rule: \(error)")
        }
        if try await storage.analysis.segments()[name] != nil {
            throw APIFailure(.conflict, "segment \(name) exists: drop it first to change its rule")
        }
        let definition = SegmentDefinition(
            name: name, rule: text, createdAt: clock.now(), size: nil, previousSize: nil, sizes: [])
        try await storage.analysis.putSegment(name, body: try JSONEncoder().encode(definition))
        logger.notice("segment defined", metadata: ["segment": "\(name)"])
        return definition
    }

    public func segmentDefinitions() async throws -> [SegmentDefinition] {
        try await storage.analysis.segments().filter { !$0.key.hasPrefix("#") }.values
            .map { try JSONDecoder().decode(SegmentDefinition.self, from: $0) }.sorted { $0.name < $1.name }
    }

    /// Where the RFM cut points of the last run over every member are kept (a key no segment's name can have).
    static let cutPointsKey = "#rfm-cut-points"
    /// Present when the next run must visit every member (a segment was dropped: its members must leave it).
    static let fullRunKey = "#full-run-due"

    public func segmentDefinition(_ name: String) async throws -> SegmentDefinition {
        guard let body = try await storage.analysis.segments()[name] else {
            throw APIFailure(.notFound, "there is no segment \(name)")
        }
        return try JSONDecoder().decode(SegmentDefinition.self, from: body)
    }

    /// Removes a segment; the next run takes it off its members (and their offers no longer reach them).
    public func dropSegment(_ name: String) async throws {
        guard try await storage.analysis.dropSegment(name) else {
            throw APIFailure(.notFound, "there is no segment \(name)")
        }
        try await storage.analysis.putSegment(Self.fullRunKey, body: Data("{}".utf8))
        logger.notice("segment dropped", metadata: ["segment": "\(name)"])
    }

    /// A member's stored analysis, or nil before the job's first run for them.
    public func memberAnalysis(_ member: MemberID) async throws -> MemberAnalysis? {
        try await storage.analysis.analysis(of: member).map { try JSONDecoder().decode(MemberAnalysis.self, from: $0) }
    }

    /// Members in a segment, in id order, after `after`.
    public func segmentMembers(_ name: String, after: MemberID?, limit: Int) async throws -> [MemberID] {
        _ = try await segmentDefinition(name)
        var found: [MemberID] = []
        var cursor = after
        while found.count < limit {
            let page = try await storage.analysis.analyses(after: cursor, limit: 500)
            guard let last = page.last else { break }
            for (member, body) in page where found.count < limit {
                if try JSONDecoder().decode(MemberAnalysis.self, from: body).segments[name] != nil {
                    found.append(member)
                }
            }
            cursor = last.0
        }
        return found
    }

    /// The segment job (docs/analysis.md): recomputes the figures, stage and rule-based segments of every member
    /// with an event since the last run, and of those whose stage changes with time by now; every member with
    /// `everyMember` (after a segment was defined or dropped, the scheduled run does this). Each member's computed
    /// segments are written to the member (so offers that target them reach the member's devices through the
    /// feed) in a unit of work under the member's lock; members without the `profiling` consent get no figures and
    /// no rule-based segment. Idempotent: a second run with nothing new changes nothing.
    public func runSegmentJob(everyMember: Bool = false) async throws -> SegmentJobReport {
        let now = clock.now()
        let store = storage.analysis
        let through = try await store.newestVersion()
        let since = try await store.lookedThrough()
        var definitions = try await segmentDefinitions()
        let rules = try definitions.map { try SegmentRule($0.rule) }
        let timeDriven = rules.contains { !$0.attributes.isDisjoint(with: Self.dailyAttributes) }
        var candidates = Set<MemberID>()
        var after: MemberID?
        // Every member when asked, or when the segments changed since the last run (a new rule applies to all).
        let fullRunDue = try await store.segments()[Self.fullRunKey] != nil
        let segmentsChanged = definitions.contains { $0.size == nil } || fullRunDue
        let full = everyMember || segmentsChanged || since == 0
        while true {
            let page =
                full
                ? try await storage.memberIDs(after: after, limit: 1_000)
                : try await store.membersChanged(since: since, after: after, limit: 1_000)
            guard let last = page.last else { break }
            candidates.formUnion(page)
            after = last
        }
        after = nil
        while true {
            let page = try await store.analysesDue(by: now, after: after, limit: 1_000)
            guard let last = page.last else { break }
            candidates.formUnion(page)
            after = last
        }
        // RFM scores rank a member among all the active ones: a run over every member first finds the population's
        // cut points; a run over some scores them by the last ones found.
        var cuts = try await store.segments()[Self.cutPointsKey].map {
            try JSONDecoder().decode(RFMCutPoints.self, from: $0)
        }
        if full {
            var population: [MemberFigures] = []
            let all = Array(candidates)
            let rules = configuration.analysisRules
            for chunk in stride(from: 0, to: all.count, by: 32).map({ all[$0..<min($0 + 32, all.count)] }) {
                try await withThrowingTaskGroup(of: MemberFigures?.self) { group in
                    for member in chunk {
                        group.addTask {
                            let state = try await self.storage.withMember(
                                MemberWorkRequest(memberID: member, now: now)
                            ) { $0.state }
                            let history = MemberHistory(state, at: now)
                            guard history.consents.contains(.profiling), state.member.status != .erased else {
                                return nil
                            }
                            return MemberFigures(history, at: now, rules: rules)
                        }
                    }
                    for try await figures in group { if let figures { population.append(figures) } }
                }
            }
            cuts = RFMScoring.cutPoints(population)
            if let cuts {
                try await store.putSegment(Self.cutPointsKey, body: try JSONEncoder().encode(cuts))
            } else {
                _ = try await store.dropSegment(Self.cutPointsKey)
            }
        }
        let scoredBy = cuts
        var report = SegmentJobReport()
        let ruled = Array(zip(definitions.map(\.name), rules))
        var sizes = [String: Int](uniqueKeysWithValues: definitions.map { ($0.name, 0) })
        let defined = Set(sizes.keys)
        var changes: [String: Int] = [:]
        var batch: [AnalysisRow] = []
        let ordered = candidates.sorted { $0.rawValue < $1.rawValue }
        // Members a chunk at a time, the chunk's members at once (each its own unit of work under its own lock):
        // most of a member's time is waiting on its reads, which overlap.
        for chunk in stride(from: 0, to: ordered.count, by: 32).map({ ordered[$0..<min($0 + 32, ordered.count)] }) {
            let done = try await withThrowingTaskGroup(of: MemberOutcome.self) { group in
                for member in chunk {
                    group.addTask {
                        try await self.analyseMember(
                            member, now: now, segments: ruled, defined: defined, cuts: scoredBy, daily: timeDriven)
                    }
                }
                var done: [MemberOutcome] = []
                for try await outcome in group { done.append(outcome) }
                return done
            }
            for outcome in done {
                let (before, current) = (outcome.before, Set(outcome.analysis.segments.keys))
                for name in current.subtracting(before) { changes[name, default: 0] += 1 }
                for name in before.subtracting(current) { changes[name, default: 0] -= 1 }
                report.entered += current.subtracting(before).count
                report.left += before.subtracting(current).count
                if outcome.analysis.figures == nil { report.excluded += 1 }
                if outcome.changed { report.analysed += 1 }
                batch.append(outcome.row)
            }
            if batch.count >= 200 {
                try await store.save(batch, through: nil)
                batch = []
            }
        }
        try await store.save(batch, through: through)
        if fullRunDue { _ = try await store.dropSegment(Self.fullRunKey) }
        // Sizes: recounted on a run over every member, moved by the entries and exits otherwise.
        let recount = full
        if recount {
            after = nil
            while true {
                let page = try await store.analyses(after: after, limit: 1_000)
                guard let last = page.last else { break }
                for (_, body) in page {
                    for name in try JSONDecoder().decode(MemberAnalysis.self, from: body).segments.keys
                    where sizes[name] != nil {
                        sizes[name, default: 0] += 1
                    }
                }
                after = last.0
            }
        }
        // A segment dropped meanwhile stays dropped (the definitions are read again once, not per segment).
        let stillDefined = Set(try await store.segments().keys)
        for index in definitions.indices where stillDefined.contains(definitions[index].name) {
            let name = definitions[index].name
            let size = recount ? sizes[name] ?? 0 : max(0, (definitions[index].size ?? 0) + (changes[name] ?? 0))
            definitions[index].previousSize = definitions[index].size
            definitions[index].size = size
            definitions[index].sizes = Array((definitions[index].sizes + [.init(at: now, size: size)]).suffix(400))
            try await store.putSegment(name, body: try JSONEncoder().encode(definitions[index]))
        }
        logger.info(
            "segment job",
            metadata: [
                "candidates": "\(candidates.count)", "changed": "\(report.analysed)", "entered": "\(report.entered)",
                "left": "\(report.left)", "excluded": "\(report.excluded)",
            ])
        return report
    }

    /// What the job found for one member.
    struct MemberOutcome: Sendable {
        var row: AnalysisRow
        var analysis: MemberAnalysis
        /// The rule-based segments the member was in before.
        var before: Set<String>
        /// Whether the figures or segments changed.
        var changed: Bool
    }

    /// One member's analysis: the previous one and the ledger movements read, then one unit of work (the member's
    /// state read under its lock, the analysis, which is pure, the member's segments written if they changed).
    func analyseMember(
        _ member: MemberID, now: Timestamp, segments ruled: [(String, SegmentRule)], defined: Set<String>,
        cuts: RFMCutPoints?, daily: Bool
    ) async throws -> MemberOutcome {
        let analysisRules = configuration.analysisRules
        let previous = try await memberAnalysis(member)
        let before = Set(previous.map { Array($0.segments.keys) } ?? [])
        // Movements written after this read have a version the next run looks at.
        let entries = try await ledgerEntries(of: member)
        let (analysis, due, contribution) = try await storage.withMember(
            MemberWorkRequest(memberID: member, now: now)
        ) { work in
            // The history is read once from the state, for the analysis and for the contribution.
            let history = MemberHistory(work.state, at: now)
            let (analysis, due) = Self.analyse(
                work.state, history: history, previous: previous, segments: ruled, at: now, rules: analysisRules,
                cuts: cuts, daily: daily)
            // The segments the operator set by hand stay; the computed ones are this run's.
            let manual = work.state.member.segments.subtracting(before).subtracting(defined)
            work.write(work.state.setSegments(manual.union(analysis.segments.keys)))
            let contribution = Self.contribution(
                work.state, history: history, entries: entries, tierChanges: analysis.tierChanges ?? [], at: now,
                rules: analysisRules)
            return (analysis, due, contribution)
        }
        return MemberOutcome(
            row: AnalysisRow(
                member: member, due: due, body: try JSONEncoder().encode(analysis), contribution: contribution),
            analysis: analysis, before: before,
            changed: previous.map { $0.figures != analysis.figures || $0.segments != analysis.segments } ?? true)
    }

    /// Attributes whose values change with the passing of days alone: a rule reading one is evaluated daily.
    static let dailyAttributes: Set<String> = [
        "recency", "days_since_redemption", "age", "age_band", "frequency", "monetary", "value", "predicted_value",
        "r", "f", "m",
    ]

    /// A member's analysis at `now` (pure): figures, stage, rule-based segments, and when it is next due.
    static func analyse(
        _ state: MemberState, history: MemberHistory, previous: MemberAnalysis?, segments: [(String, SegmentRule)],
        at now: Timestamp, rules: AnalysisRules, cuts: RFMCutPoints?, daily: Bool
    ) -> (MemberAnalysis, due: Timestamp?) {
        var analysis = MemberAnalysis(
            computedAt: now, figures: nil, excluded: nil, stage: nil, stageSince: nil, stages: previous?.stages ?? [],
            segments: [:], tier: history.tier, tierChanges: previous?.tierChanges ?? [])
        if let previous, let changes = previous.tierChanges, previous.tier != history.tier {
            analysis.tierChanges = Array(
                (changes + [TierChange(from: previous.tier, to: history.tier, at: now)]).suffix(50))
        }
        if state.member.status == .erased {
            analysis.excluded = "erased on request (GDPR Art. 17): no figures and no segment"
            return (analysis, nil)
        }
        guard history.consents.contains(.profiling) else {
            analysis.excluded =
                "no profiling consent: no figures and no rule-based segment (GDPR Art. 21 and 22); only what running "
                + "the programme needs (balance, tier) is kept"
            return (analysis, nil)
        }
        var facts = MemberFacts(history, at: now, rules: rules)
        facts.figures.rfm = cuts.flatMap { RFMScoring.score(facts.figures, by: $0) }
        let stage = facts.figures.stage
        analysis.figures = facts.figures
        analysis.stage = stage
        if previous?.stage == stage, let since = previous?.stageSince {
            analysis.stageSince = since
        } else {
            analysis.stageSince = now
            analysis.stages = Array((analysis.stages + [.init(stage: stage, at: now)]).suffix(50))
        }
        for (name, rule) in segments where rule.matches(facts) {
            analysis.segments[name] = previous?.segments[name] ?? now
            analysis.reasons[name] = rule.explanation(for: facts)
        }
        return (analysis, daily ? now.adding(.days(1)) : MemberFigures.nextStageChange(history, at: now, rules: rules))
    }

    /// What a member adds to the programme's sums at `now` (pure; docs/analysis.md, "Programme KPIs"); `history`
    /// is the state's at `now`.
    static func contribution(
        _ state: MemberState, history: MemberHistory, entries: [LedgerEntry], tierChanges: [TierChange],
        at now: Timestamp, rules: AnalysisRules
    ) -> ProgrammeFigures {
        let reserved = state.allowances.values.filter { $0.status == .held }.reduce(0) {
            $0 + max(0, $1.points - $1.used - $1.cut)
        }
        let input = MemberContributionInput(
            history: history, entries: entries, reserved: reserved, owed: state.ledger.owed,
            tierChanges: tierChanges,
            profiled: history.consents.contains(.profiling) && state.member.status != .erased)
        return ProgrammeFigures.contribution(of: input, at: now, rules: rules, zone: state.program.zone)
    }

    /// A member's ledger movements (the raw events).
    func ledgerEntries(of member: MemberID) async throws -> [LedgerEntry] {
        try await storage.analysis.ledgerEntryBodies(of: member).map {
            guard case .ledgerEntry(let entry) = try Entity.decode(kind: .ledgerEntry, json: $0) else {
                throw LoyaltyError("corrupt_entity", "a ledger movement of member \(member) is not one")
            }
            return entry
        }
    }

    /// A member's own entities (not the programme-wide ones), from the feed.
    func memberEntities(of member: MemberID) async throws -> [Entity] {
        var entities: [Entity] = []
        var cursor = Cursor.start
        while true {
            let page = try await storage.feed(member: member, after: cursor, limit: 1_000)
            for change in page.changes {
                guard let body = change.body else { continue }
                let entity = try Entity.decode(kind: change.key.kind, json: body)
                if !entity.isProgrammeWide { entities.append(entity) }
            }
            guard page.hasMore, let last = page.changes.last else { break }
            cursor = Cursor(version: last.version)
        }
        return entities
    }
}

extension SyncService {
    /// A member's events, newest first, with their touchpoints (docs/analysis.md, "Touchpoints and the timeline"):
    /// read from the member's entities in the feed, the raw events; at most `limit`.
    public func timeline(of member: MemberID, limit: Int) async throws -> [TimelineEvent] {
        guard (1...1_000).contains(limit) else { throw APIFailure(.unprocessable, "limit must be 1 to 1000") }
        _ = try await overview(of: member)  // 404 for a member that does not exist
        let entities = try await memberEntities(of: member)
        var shops: [String: String] = [:]
        for case .receiptClaim(let claim) in entities {
            if let (receipt, _) = try await storage.receipt(code: claim.code) { shops[claim.code] = receipt.shop }
        }
        let tills = try await tillTransactions(in: entities).mapValues {
            TillPlace(shop: $0.shop, categories: $0.categories)
        }
        return Array(Timeline.events(of: entities, shops: shops, tills: tills).prefix(limit))
    }

    /// The till's transactions the member's movements came from (purchases, redemptions, returns), by id.
    func tillTransactions(in entities: [Entity]) async throws -> [String: TransactionRecord] {
        var found: [String: TransactionRecord] = [:]
        for case .ledgerEntry(let entry) in entities {
            guard let id = Timeline.tillTransaction(of: entry), found[id] == nil,
                let record = try await storage.transaction(TransactionID(id))
            else { continue }
            found[id] = record
        }
        return found
    }
}
