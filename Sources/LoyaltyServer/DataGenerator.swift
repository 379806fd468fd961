public import Foundation
public import Logging
public import LoyaltyCore
internal import Synchronization

/// Fills an empty store with a deterministic, plausible history of a programme (docs/analysis.md, "Data to
/// analyse"): members enrolling over the period, each buying at an interval and a basket of their own with a
/// seasonal lift in December, some lapsing and some of those coming back, returns, redemptions at the till, a
/// satisfaction survey answered by some, the profiling consent given by most and withdrawn by a few. Everything goes
/// through the sync service, as the till and the apps would, on a test clock moved day by day; ids come from the
/// seed, so the same seed gives the same programme.
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
        var device: DeviceRecord?
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
        var habits: [Habit] = (0..<members).map { _ in
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
        for day in 0...days {
            let today = start.adding(.days(Int64(day))).adding(.hours(10))
            _ = try service.setClock(to: today, advanceBy: nil)
            for index in habits.indices {
                var habit = habits[index]
                defer { habits[index] = habit }
                if day == habit.enrolDay {
                    let session = try await service.enroll(
                        Registration(name: "Member \(index)", email: "member\(index)@generated.example"),
                        password: "generated password", deviceName: "phone")
                    habit.memberID = session.memberID
                    habit.device = try await service.storage.device(session.deviceID)
                    report.members += 1
                    if habit.profiling { try await push(.setConsent(.profiling, granted: true), &habit, service) }
                }
                guard day > habit.enrolDay else { continue }
                if day == habit.withdrawDay, habit.profiling {
                    try await push(.setConsent(.profiling, granted: false), &habit, service)
                    report.withdrawals += 1
                }
                if day == habit.surveyDay {
                    let rating = min(5, 2 + random.int(0..<4) + (random.int(0..<3) == 0 ? 1 : 0))
                    try await push(.answerSurvey(Self.surveyID, answers: ["q1": "\(rating)"]), &habit, service)
                    report.answers += 1
                }
                let lapsed = habit.lapseDay.map { day >= $0 } ?? false
                let back = habit.returnDay.map { day >= $0 } ?? false
                if day >= habit.nextPurchase, !lapsed || back {
                    let december = CalendarDate.utc(today).month == 12
                    let amount = Int64(habit.basket * (december ? 1.3 : 1) * Double(50 + random.int(0..<101)) / 100)
                    let transaction = "G-\(index)-\(habit.purchases)"
                    _ = try await service.recordPurchase(
                        amount: Money(minorUnits: max(100, amount)).description, card: nil,
                        member: habit.memberID.rawValue, receiptCode: nil, transaction: transaction)
                    habit.purchases += 1
                    report.purchases += 1
                    if random.int(0..<30) == 0 {
                        _ = try await service.recordReturn(
                            amount: Money(minorUnits: max(100, amount) / 2).description, receiptCode: nil,
                            transaction: transaction, returnID: "GR-\(index)-\(habit.purchases)")
                        report.returns += 1
                    }
                    let gap = habit.interval * Double(50 + random.int(0..<101)) / 100
                    habit.nextPurchase = day + max(1, Int(gap.rounded()))
                }
            }
            if day % 7 == 0 {
                _ = try await service.run(.unlock)
                _ = try await service.run(.expire)
                report.redemptions += try await redeem(&habits, day: day, random: &random, service)
            }
            if days >= 10, day % (days / 10) == 0 {
                progress("day \(day) of \(days): \(report)")
            }
        }
        return report
    }

    /// Some members with enough points pay with them at the till.
    private func redeem(
        _ habits: inout [Habit], day: Int, random: inout SeededRandom, _ service: SyncService
    ) async throws -> Int {
        var count = 0
        for habit in habits where day > habit.enrolDay && random.int(0..<10) == 0 {
            let available = try await service.overview(of: habit.memberID).state.balance(at: service.now).available
            guard available >= 500 else { continue }
            _ = try await service.redeemAtTill(
                points: 500, card: nil, member: habit.memberID.rawValue, transaction: nil)
            count += 1
        }
        return count
    }

    /// A mutation from the member's phone, as the app would push it.
    private func push(_ mutation: Mutation, _ habit: inout Habit, _ service: SyncService) async throws {
        guard let device = habit.device else { return }
        habit.sequence += 1
        let now = service.now
        _ = try await service.push(
            PushRequest(
                deviceID: device.id,
                mutations: [
                    MutationEnvelope(
                        deviceID: device.id, sequence: habit.sequence,
                        stamp: HLCTimestamp(wallMilliseconds: now.millisecondsSince1970, counter: 0), deviceTime: now,
                        mutation: mutation)
                ]), from: device)
    }
}
