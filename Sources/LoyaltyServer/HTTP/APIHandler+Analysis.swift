internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyAnalysis
internal import LoyaltyCore

// The admin API's segments and members' analyses (docs/analysis.md).
extension APIHandler {
    func adminListSegments(
        _ input: Operations.AdminListSegments.Input
    ) async throws
        -> Operations.AdminListSegments.Output
    {
        .ok(.init(body: .json(.init(segments: try await service.segmentDefinitions().map(\.wire)))))
    }

    func adminDefineSegment(
        _ input: Operations.AdminDefineSegment.Input
    ) async throws
        -> Operations.AdminDefineSegment.Output
    {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        return .created(.init(body: .json(try await service.defineSegment(name: body.name, rule: body.rule).wire)))
    }

    func adminShowSegment(_ input: Operations.AdminShowSegment.Input) async throws -> Operations.AdminShowSegment.Output
    {
        let limit = input.query.limit ?? 1_000
        guard (1...10_000).contains(limit) else { throw APIFailure(.unprocessable, "limit must be 1 to 10000") }
        let definition = try await service.segmentDefinition(input.path.name)
        var members: [String]?
        if input.query.members ?? false {
            members = try await service.segmentMembers(definition.name, after: nil, limit: limit).map(\.rawValue)
        }
        return .ok(
            .init(
                body: .json(
                    .init(
                        segment: definition.wire,
                        sizes: definition.sizes.map { .init(at: $0.at.wire, size: $0.size) }, members: members))))
    }

    func adminDropSegment(_ input: Operations.AdminDropSegment.Input) async throws -> Operations.AdminDropSegment.Output
    {
        try await service.dropSegment(input.path.name)
        return .noContent(.init())
    }

    func adminMemberAnalysis(
        _ input: Operations.AdminMemberAnalysis.Input
    ) async throws
        -> Operations.AdminMemberAnalysis.Output
    {
        let member = MemberID(input.path.memberID)
        guard let analysis = try await service.memberAnalysis(member) else {
            _ = try await service.overview(of: member)  // 404 for a member that does not exist
            throw APIFailure(.notFound, "member \(member) has not been analysed yet: run the segment job")
        }
        return .ok(.init(body: .json(analysis.wire(of: member))))
    }
}

extension MemberAnalysis {
    /// The contract's form.
    func wire(of member: MemberID) -> Components.Schemas.MemberAnalysis {
        let figures = self.figures.map { figures in
            Components.Schemas.MemberAnalysis.FiguresPayload(
                recencyDays: figures.recencyDays, frequency: figures.frequency,
                monetary: figures.monetary.description, predictedValue: figures.predictedValue.description,
                pointsEarned: figures.pointsEarned, pointsRedeemed: figures.pointsRedeemed,
                pointsExpired: figures.pointsExpired, pointsHeld: figures.pointsHeld,
                daysSinceRedemption: figures.daysSinceRedemption, satisfaction: figures.satisfaction,
                tier: figures.tier, age: figures.age, ageBand: figures.ageBand, postcodeArea: figures.postcodeArea,
                rfm: figures.rfm.map { .init(recency: $0.recency, frequency: $0.frequency, monetary: $0.monetary) })
        }
        return .init(
            memberID: member.rawValue, computedAt: computedAt.wire, excluded: excluded,
            stage: stage.flatMap { .init(rawValue: $0.rawValue) }, stageSince: stageSince?.wire,
            stages: stages.map { .init(stage: .init(rawValue: $0.stage.rawValue)!, at: $0.at.wire) },
            figures: figures,
            segments: segments.sorted { $0.key < $1.key }.map {
                .init(name: $0.key, since: $0.value.wire, because: reasons[$0.key] ?? [])
            })
    }
}

extension APIHandler {
    func adminMemberTimeline(
        _ input: Operations.AdminMemberTimeline.Input
    ) async throws
        -> Operations.AdminMemberTimeline.Output
    {
        let events = try await service.timeline(of: MemberID(input.path.memberID), limit: input.query.limit ?? 100)
        return .ok(
            .init(
                body: .json(
                    .init(
                        events: events.map {
                            .init(
                                at: $0.at.wire, kind: $0.kind, channel: .init(rawValue: $0.channel.rawValue)!,
                                place: $0.place, points: $0.points, detail: $0.detail)
                        }))))
    }
}

extension SegmentDefinition {
    var wire: Components.Schemas.Segment {
        .init(name: name, rule: rule, createdAt: createdAt.wire, size: size, previousSize: previousSize)
    }
}

extension APIHandler {
    func adminProgrammeReport(
        _ input: Operations.AdminProgrammeReport.Input
    ) async throws
        -> Operations.AdminProgrammeReport.Output
    {
        func date(_ text: String?, _ name: String) throws -> CalendarDate? {
            guard let text else { return nil }
            guard let date = CalendarDate(text) else {
                throw APIFailure(.unprocessable, "\(name) must be a date YYYY-MM-DD (got \(text.quoted))")
            }
            return date
        }
        let report = try await service.programmeReport(
            from: try date(input.query.from, "from"), to: try date(input.query.to, "to"),
            by: input.query.by.flatMap { ProgrammeReport.Granularity(rawValue: $0.rawValue) } ?? .month,
            recompute: input.query.recompute ?? false)
        // The report's Codable form is the contract's schema (a test holds every field to it).
        let body = try JSONDecoder().decode(
            Components.Schemas.ProgrammeReport.self, from: try JSONEncoder().encode(report))
        return .ok(.init(body: .json(body)))
    }
}
