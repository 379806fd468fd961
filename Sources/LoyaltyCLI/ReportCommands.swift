internal import ArgumentParser
internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyCore

extension Admin {
    struct ReportAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "report", abstract: "Reports on the programme.", subcommands: [Programme.self])

        struct Programme: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Does the programme work? Members, activity, points flows, liability, stages, satisfaction.",
                discussion: """
                    Read from the sums the segment job maintains (run it first: `loyalty admin job segment`); \
                    --recompute recomputes them from every member's raw events instead (slow; a check). The \
                    definitions (what counts as redeemed, as breakage, as active) are in docs/analysis.md, \
                    "Programme KPIs".
                    Example: loyalty admin report programme --server http://127.0.0.1:8080 --from 2026-01-01 --by week --csv
                    """)
            @OptionGroup var admin: AdminOptions
            @Option(help: "First day, YYYY-MM-DD (default: the first of the month eleven months before --to).")
            var from: String?
            @Option(help: "Last day, YYYY-MM-DD (default: today in the programme's time zone).") var to: String?
            @Option(help: "One row per week or month.") var by: String = "month"
            @Flag(help: "The time series as CSV on stdout (one row per period).") var csv = false
            @Flag(help: "Recompute from every member's raw events instead of the maintained sums.") var recompute =
                false

            func validate() throws {
                for (name, value) in [("--from", from), ("--to", to)] {
                    if let value, CalendarDate(value) == nil {
                        throw ValidationError("\(name) must be a date YYYY-MM-DD (got \(value.quoted)).")
                    }
                }
                guard let granularity = Operations.AdminProgrammeReport.Input.Query.ByPayload(rawValue: by) else {
                    throw ValidationError("--by must be week or month (got \(by.quoted)).")
                }
                _ = granularity
                if csv && admin.json { throw ValidationError("Give --csv or --json, not both.") }
            }

            func run() async throws {
                let report = try await admin.client().call {
                    try await $0.adminProgrammeReport(
                        query: .init(from: from, to: to, by: .init(rawValue: by), recompute: recompute)
                    ).ok.body.json
                }
                if csv {
                    FileHandle.standardOutput.write(Data(Self.csv(report).utf8))
                    return
                }
                let document =
                    (try? JSONSerialization.jsonObject(with: JSONEncoder().encode(report))) as? [String: Any] ?? [:]
                admin.output.emit(document, text: Self.text(report))
            }

            static let columns =
                [
                    "start", "end", "enrolments", "members", "buyers", "redeemers", "purchases", "revenue", "issued",
                    "redeemed", "expired", "returned", "adjusted", "redemption_rate", "breakage_rate",
                    "liability_points",
                    "liability",
                ] + ["new", "active", "at-risk", "lapsed", "won-back"].map { "stage_\($0)" }

            /// One row per period, amounts in the currency with two decimals.
            static func csv(_ report: Components.Schemas.ProgrammeReport) -> String {
                var lines = [columns.joined(separator: ",")]
                for period in report.periods {
                    let cells: [String] =
                        [
                            period.start, period.end, "\(period.enrolments)", "\(period.members)", "\(period.buyers)",
                            "\(period.redeemers)", "\(period.purchases)", money(period.revenueMinorUnits),
                            "\(period.pointsIssued)", "\(period.pointsRedeemed)", "\(period.pointsExpired)",
                            "\(period.pointsReturned)", "\(period.pointsAdjusted)", rate(period.redemptionRate),
                            rate(period.breakageRate), "\(period.liabilityPoints)", money(period.liabilityMinorUnits),
                        ]
                        + ["new", "active", "at-risk", "lapsed", "won-back"].map {
                            "\(period.stages.additionalProperties[$0] ?? 0)"
                        }
                    lines.append(cells.joined(separator: ","))
                }
                return lines.joined(separator: "\n") + "\n"
            }

            static func text(_ report: Components.Schemas.ProgrammeReport) -> String {
                let head = report.headline
                let currency = report.currency
                func share(_ value: Double?) -> String {
                    value.map { String(format: "%.1f%%", $0 * 100) } ?? "n/a (nothing issued)"
                }
                func counts(_ values: [String: Int]) -> String {
                    values.isEmpty
                        ? "none"
                        : values.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }
                            .joined(separator: ", ")
                }
                var lines = [
                    "Programme report \(report.from) to \(report.to), by \(report.by.rawValue) (as of \(report.asOf), "
                        + "\(report.source.rawValue))",
                    "Members          \(head.members) (\(head.profiledMembers) with profiling consent); active in "
                        + "30/90/365 days: \(head.active30) / \(head.active90) / \(head.active365)",
                    "Enrolments       \(head.enrolments)",
                    "Points           issued \(head.pointsIssued), redeemed \(head.pointsRedeemed), expired "
                        + "\(head.pointsExpired), returned \(head.pointsReturned), adjusted \(head.pointsAdjusted), forfeited "
                        + "\(head.pointsForfeited), paid out \(head.pointsPaidOut)",
                    "Redemption rate  \(share(head.redemptionRate)) (lifetime \(share(head.lifetimeRedemptionRate)))",
                    "Breakage rate    \(share(head.breakageRate)) (lifetime \(share(head.lifetimeBreakageRate)))",
                    "Liability        \(head.liabilityPoints) points = \(money(head.liabilityMinorUnits)) \(currency); "
                        + "reserved by devices \(head.reservedPoints) points = \(money(head.reservedMinorUnits)) "
                        + "\(currency); owed by members \(head.owedPoints) points",
                    "Never redeemed   \(head.neverRedeemedShare.map { String(format: "%.1f%% of members", $0 * 100) } ?? "n/a")",
                    "Tiers            \(counts(head.tiers.additionalProperties))",
                    "Tier movements   \(counts(head.tierMovements.additionalProperties))",
                    "Stages           \(counts(head.stages.additionalProperties))",
                    "Satisfaction     \(head.satisfaction.map { String(format: "%.2f of 5", $0) } ?? "no ratings")",
                    "",
                    [
                        pad("period", 11), pad("enrol", 6), pad("members", 8), pad("buyers", 7), pad("revenue", 12),
                        pad("issued", 8), pad("redeemed", 9), pad("expired", 8), pad("liability", 14), "stage flows",
                    ].joined(separator: " "),
                ]
                for period in report.periods {
                    lines.append(
                        [
                            pad(period.start, 11), pad("\(period.enrolments)", 6), pad("\(period.members)", 8),
                            pad("\(period.buyers)", 7), pad(money(period.revenueMinorUnits), 12),
                            pad("\(period.pointsIssued)", 8), pad("\(period.pointsRedeemed)", 9),
                            pad("\(period.pointsExpired)", 8), pad(money(period.liabilityMinorUnits), 14),
                            counts(period.stageFlows.additionalProperties),
                        ].joined(separator: " "))
                }
                return lines.joined(separator: "\n")
            }

            static func money(_ minorUnits: Int) -> String {
                let sign = minorUnits < 0 ? "-" : ""
                let cents = abs(minorUnits) % 100
                return "\(sign)\(abs(minorUnits) / 100).\(cents < 10 ? "0" : "")\(cents)"
            }

            static func rate(_ value: Double?) -> String { value.map { String(format: "%.4f", $0) } ?? "" }
        }
    }
}
