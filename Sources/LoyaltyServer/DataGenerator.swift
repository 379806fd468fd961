internal import Foundation
public import Logging
public import LoyaltyCore
internal import Synchronization

/// Fills an empty store with a deterministic, plausible history of a programme (docs/analysis.md, "Data to
/// analyse"): members enrolling over the period, each buying at an interval and a basket of their own with a
/// seasonal lift in December, some lapsing and some of those coming back, returns, redemptions at the till, a
/// satisfaction survey answered by some, the profiling consent given by most and withdrawn by a few. Members enrol
/// through the sync service on a test clock; then each member's history is one unit of work on the member (the
/// operations of the till and the mutations of the app applied in order by the server's rules, each at its own
/// time), so that a store of 10,000 members takes seconds rather than the minutes one unit per event took. Ids come
/// from the seed, so the same seed gives the same programme.
public struct DataGenerator: Sendable {
    public var members: Int
    public var months: Int
    public var seed: UInt64
    /// The last day of the history (the first is `months` × 30 days before).
    public var end: Timestamp

    public init(members: Int, months: Int, seed: UInt64, end: Timestamp) {
        self.members = members
        self.months = months
        self.seed = seed
        self.end = end
    }

    /// What a run made.
    public struct Report: Sendable, Hashable, CustomStringConvertible {
        public var members = 0
        public var purchases = 0
        public var returns = 0
        public var redemptions = 0
        public var answers = 0
        public var withdrawals = 0

        mutating func add(_ other: Report) {
            purchases += other.purchases
            returns += other.returns
            redemptions += other.redemptions
            answers += other.answers
            withdrawals += other.withdrawals
        }

        public var description: String {
            "\(members) members, \(purchases) purchases, \(returns) returns, \(redemptions) till redemptions, "
                + "\(answers) survey answers, \(withdrawals) profiling consents withdrawn"
        }
    }

    /// The survey the generated members answer.
    static let surveyID = SurveyID("S-satisfaction")

    /// One member's habits, drawn once from the seed.
    struct Habit {
        var memberID = MemberID("")
        var sequence: UInt64 = 0
        var enrolDay: Int
        /// Mean days between purchases, and the mean basket in minor units.
        var interval: Double
        var basket: Double
        var nextPurchase: Int
        /// The day the member stops buying (nil: never), and the day they come back (nil: never).
        var lapseDay: Int?
        var returnDay: Int?
        var profiling: Bool
        var withdrawDay: Int?
        var surveyDay: Int?
        var purchases = 0
    }

    /// A service on `storage` whose ids come from the seed and whose clock the generator moves, with the default
    /// programme installed.
    public static func service(
        on storage: any ServerStorage, tokens: TokenAuthority, seed: UInt64, logger: Logger
    ) async throws -> SyncService {
        let random = Mutex(SeededRandom(seed: seed ^ 0x1D5))
        let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        var configuration = ServerConfiguration()
        configuration.passwordHashing = ScryptParameters(logN: 1)
        let service = SyncService(
            // A clock that stands still between the generator's moves: the history does not depend on how fast it runs.
            storage: storage, clock: TestClock(base: { Timestamp(millisecondsSince1970: 0) }),
            configuration: configuration, tokens: tokens, logger: logger,
            makeID: { prefix in
                random.withLock { random in prefix + String((0..<12).map { _ in alphabet[random.int(0..<32)] }) }
            })
        let settings = try ServerSettings(dataDirectory: FileManager.default.temporaryDirectory)
        try await service.prepare(program: settings.program, catalogue: settings.catalogue)
        return service
    }

    /// Runs the history through `service` (made by ``service(on:seed:logger:)`` on an empty store), calling
    /// `progress` about every tenth of the period.
    public func run(on service: SyncService, progress: @Sendable (String) -> Void) async throws -> Report {
        guard members >= 1, members <= 10_000_000, months >= 1, months <= 120 else {
            throw LoyaltyError("invalid_generation", "members must be 1 to 10,000,000 and months 1 to 120")
        }
        guard try await service.storage.memberIDs(after: nil, limit: 1).isEmpty else {
            throw LoyaltyError(
                "store_not_empty", "the store has members already: generate into an empty data directory or database")
        }
        var random = SeededRandom(seed: seed)
        let days = months * 30
        let start = end.adding(.days(Int64(-days)))
        _ = try service.setClock(to: start, advanceBy: nil)
        _ = try await service.createSurvey(
            Survey(
                id: Self.surveyID, title: "How satisfied are you with us?",
                questions: [.init(id: "q1", text: "Your rating", kind: .rating(maximum: 5), isRequired: true)],
                points: 20))
        let habits: [Habit] = (0..<members).map { _ in
            let enrolDay = random.int(0..<days)
            let interval = 5 + Double(random.int(0..<56)) * (random.int(0..<4) == 0 ? 1.8 : 1)
            let lapses = random.int(0..<5) == 0
            let lapseDay = lapses ? enrolDay + random.int(30..<max(31, days)) : nil
            return Habit(
                enrolDay: enrolDay, interval: interval, basket: Double(1_500 + random.int(0..<10_500)),
                nextPurchase: enrolDay + random.int(0..<Int(interval) + 1), lapseDay: lapseDay,
                returnDay: lapseDay.flatMap { random.int(0..<3) == 0 ? $0 + 200 + random.int(0..<120) : nil },
                profiling: random.int(0..<4) != 0,
                withdrawDay: random.int(0..<20) == 0 ? enrolDay + random.int(1..<max(2, days)) : nil,
                surveyDay: random.int(0..<3) == 0 ? enrolDay + random.int(1..<60) : nil)
        }
        var report = Report()
        // Members one after another in the order they enrol (their ids come from the seed in that order); each
        // member's whole history is one unit of work on the member, with the clock at the enrolment.
        let order = habits.indices.sorted { (habits[$0].enrolDay, $0) < (habits[$1].enrolDay, $1) }
        // First every enrolment, in order (the ids come from the seed in that order); then the histories, four at a
        // time (each member's draws come from the seed and the member's index, so the order they run in is free).
        var enrolled: [(index: Int, habit: Habit, device: DeviceID)] = []
        for index in order {
            var habit = habits[index]
            _ = try service.setClock(
                to: start.adding(.days(Int64(habit.enrolDay))).adding(.hours(10)), advanceBy: nil)
            let session = try await service.enroll(
                Registration(name: "Member \(index)", email: "member\(index)@generated.example"),
                password: "generated password", deviceName: "phone")
            habit.memberID = session.memberID
            enrolled.append((index, habit, session.deviceID))
            report.members += 1
        }
        progress("\(members) members enrolled")
        let lanes = 4
        let seed = self.seed
        let members = self.members
        try await withThrowingTaskGroup(of: Report.self) { group in
            for lane in 0..<lanes {
                let mine = stride(from: lane, to: enrolled.count, by: lanes).map { enrolled[$0] }
                group.addTask {
                    var found = Report()
                    for (index, habit, device) in mine {
                        var random = SeededRandom(seed: seed ^ (UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15))
                        found.add(
                            try await Self.live(
                                habit, device: device, days: days, start: start, random: &random, service: service))
                    }
                    return found
                }
            }
            var done = 0
            for try await found in group {
                report.add(found)
                done += 1
                progress("histories: \(done * members / lanes) of \(members) members")
            }
        }
        _ = try service.setClock(to: end, advanceBy: nil)
        return report
    }

    /// Shops the generated tills are in, and the categories of their baskets.
    static let shops = ["Berlin Mitte", "Hamburg Altona", "München Schwabing", "Köln Ehrenfeld", "Leipzig Zentrum"]
    static let categories = ["food", "drinks", "drugstore", "household", "garden", "electronics"]

    /// One member's history from enrolment to the end, in one unit of work on the member: each day's consent
    /// changes, survey answer, purchase (at the member's usual shop, now and then another) and return; every week
    /// the unlock and expiry the jobs would make and, with a chance of one in ten, 500 points paid at the till.
    private static func live(
        _ habit: Habit, device: DeviceID, days: Int, start: Timestamp, random: inout SeededRandom,
        service: SyncService
    ) async throws -> Report {
        var request = MemberWorkRequest(memberID: habit.memberID, now: service.now)
        request.recordsJobsDue = true
        let home = shops[random.int(0..<shops.count)]
        let local = random
        let (found, after) = try await service.storage.withMember(request) { work in
            var random = local
            var habit = habit
            var report = Report()
            var changes: [EntityKey: Entity] = [:]
            var history: [Entity] = []
            func keep(_ entities: [Entity]) {
                for entity in entities {
                    if case .ledgerEntry = entity { history.append(entity) } else { changes[entity.key] = entity }
                }
            }
            func mutate(_ mutation: Mutation, at time: Timestamp) {
                habit.sequence += 1
                let envelope = MutationEnvelope(
                    deviceID: device, sequence: habit.sequence,
                    stamp: HLCTimestamp(wallMilliseconds: time.millisecondsSince1970, counter: 0), deviceTime: time,
                    mutation: mutation)
                let context = ApplyContext.server(
                    now: time, claimedActedAt: time, grace: work.state.program.offlineGrace, notBefore: nil,
                    facts: ServerFacts())
                keep(work.state.apply(envelope, context: context).changes)
            }
            if habit.profiling {
                mutate(
                    .setConsent(.profiling, granted: true),
                    at: start.adding(.days(Int64(habit.enrolDay))).adding(.hours(11)))
            }
            for day in (habit.enrolDay + 1)...max(habit.enrolDay + 1, days) where day <= days {
                let today = start.adding(.days(Int64(day))).adding(.hours(10))
                if day == habit.withdrawDay, habit.profiling {
                    mutate(.setConsent(.profiling, granted: false), at: today)
                    report.withdrawals += 1
                }
                if day == habit.surveyDay {
                    let rating = min(5, 2 + random.int(0..<4) + (random.int(0..<3) == 0 ? 1 : 0))
                    mutate(.answerSurvey(surveyID, answers: ["q1": "\(rating)"]), at: today)
                    report.answers += 1
                }
                let lapsed = habit.lapseDay.map { day >= $0 } ?? false
                let back = habit.returnDay.map { day >= $0 } ?? false
                if day >= habit.nextPurchase, !lapsed || back {
                    let december = CalendarDate.utc(today).month == 12
                    let amount = max(
                        100, Int64(habit.basket * (december ? 1.3 : 1) * Double(50 + random.int(0..<101)) / 100))
                    let transaction = TransactionID("G-\(habit.memberID.rawValue)-\(habit.purchases)")
                    let shop = random.int(0..<5) == 0 ? shops[random.int(0..<shops.count)] : home
                    var basket: [String] = []
                    for category in categories where random.int(0..<3) == 0 { basket.append(category) }
                    keep(
                        try work.state.recordPurchase(
                            transaction, amount: Money(minorUnits: amount), card: nil, at: today))
                    work.record(
                        TransactionRecord(
                            id: transaction, kind: .purchase, memberID: habit.memberID,
                            lot: LotID("purchase:\(transaction)"), receiptCode: nil, shop: shop,
                            categories: basket.isEmpty ? ["food"] : basket))
                    habit.purchases += 1
                    report.purchases += 1
                    if random.int(0..<30) == 0 {
                        let returned = TransactionID("GR-\(habit.memberID.rawValue)-\(habit.purchases)")
                        keep(
                            try work.state.recordReturn(
                                returned, of: LotID("purchase:\(transaction)"), amount: Money(minorUnits: amount / 2),
                                at: today.adding(.hours(2))))
                        work.record(
                            TransactionRecord(
                                id: returned, kind: .return, memberID: habit.memberID,
                                lot: LotID("purchase:\(transaction)"), receiptCode: nil, shop: shop))
                        report.returns += 1
                    }
                    let gap = habit.interval * Double(50 + random.int(0..<101)) / 100
                    habit.nextPurchase = day + max(1, Int(gap.rounded()))
                }
                if day % 7 == 0 {
                    keep(work.state.unlockPending(at: today))
                    keep(work.state.expireLots(at: today))
                    if random.int(0..<10) == 0, work.state.balance(at: today).available >= 500 {
                        let transaction = TransactionID("GT-\(habit.memberID.rawValue)-\(day)")
                        keep(try work.state.redeemAtTill(transaction, points: 500, card: nil, at: today))
                        work.record(
                            TransactionRecord(
                                id: transaction, kind: .redemption, memberID: habit.memberID, lot: nil,
                                receiptCode: nil, shop: home))
                        report.redemptions += 1
                    }
                }
            }
            work.write(history + changes.values.sorted { $0.key < $1.key })
            return (report, random)
        }
        random = after
        return found
    }
}
