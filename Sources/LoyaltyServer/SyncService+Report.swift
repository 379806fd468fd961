internal import Foundation
public import LoyaltyAnalysis
public import LoyaltyCore

extension SyncService {
    /// The programme report (docs/analysis.md, "Programme KPIs") over the whole weeks or months from `from` to `to`
    /// (by default the twelve months to today): read from the sums the segment job maintains, or, with
    /// `recompute`, from every member's raw events (slow: a check that the sums are right).
    public func programmeReport(
        from: CalendarDate?, to: CalendarDate?, by: ProgrammeReport.Granularity, recompute: Bool = false
    ) async throws -> ProgrammeReport {
        let now = clock.now()
        let program = try await storage.withCatalogue(now: now) { $0.program }
        let today = CalendarDate.of(now, in: program.zone)
        let end = to ?? today
        let start = from ?? CalendarDate(year: end.year - 1, month: end.month, day: 1)!.adding(days: 31).monthStart
        guard start <= end else {
            throw APIFailure(.unprocessable, "from (\(start)) is after to (\(end))")
        }
        guard start.adding(days: 366 * 10) >= end else {
            throw APIFailure(.unprocessable, "a report covers at most ten years (from \(start) to \(end))")
        }
        let figures = recompute ? try await recomputedProgrammeFigures() : try await storage.analysis.programmeFigures()
        return ProgrammeReport(
            figures, from: start, to: end, by: by, asOf: today, source: recompute ? "raw events" : "maintained",
            currency: program.currency, pointValue: program.pointValue)
    }

    /// The programme's sums recomputed from every member's raw events at the time of the last run of the segment
    /// job for that member (its analysis' time), without the stored contributions: what the maintained sums must
    /// equal. Members the job has not analysed yet are left out, as they are from the maintained sums.
    public func recomputedProgrammeFigures() async throws -> ProgrammeFigures {
        var figures = ProgrammeFigures()
        var after: MemberID?
        let rules = configuration.analysisRules
        while true {
            let page = try await storage.analysis.analyses(after: after, limit: 500)
            guard let last = page.last else { break }
            for (member, body) in page {
                let analysis = try JSONDecoder().decode(MemberAnalysis.self, from: body)
                let entries = try await ledgerEntries(of: member)
                let state = try await storage.withMember(
                    MemberWorkRequest(memberID: member, now: analysis.computedAt)
                ) { $0.state }
                figures.add(
                    Self.contribution(
                        state, history: MemberHistory(state, at: analysis.computedAt), entries: entries,
                        tierChanges: analysis.tierChanges ?? [], at: analysis.computedAt, rules: rules))
            }
            after = last.0
        }
        return figures
    }

    /// Sets the programme's gauges on `/metrics` from the maintained sums (after each run of the segment job).
    func recordProgrammeGauges() async throws {
        let report = try await programmeReport(from: nil, to: nil, by: .month)
        metrics.record(report.headline)
    }
}
