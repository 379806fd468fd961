internal import ArgumentParser
internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch two devices of one member go through an offline story with real conflicts.",
        discussion: """
            With no options it starts loyalty-server (beside this executable, on PATH, or LOYALTY_SERVER_BINARY; built \
            first under swift run) on a SQLite store in a temporary directory, enrols Anna, \
            and takes her phone and tablet offline: both redeem the same single-use offer, both edit her phone \
            number, both spend the same points, and the till credits a purchase meanwhile. Then both sync, and the \
            demo shows what the server decided, the notices each device got, and that both devices and the server \
            agree.

              loyalty demo                       # everything in a temporary directory, removed afterwards
              loyalty demo --keep ./demo         # keep the server data and the device directories to explore:
                                                 #   loyalty --device ./demo/phone balance
              LOYALTY_ADMIN_TOKEN=... loyalty demo --server http://127.0.0.1:8080   # against a running server
            """)

    @Option(help: "Keep the server data and the device directories in this directory.") var keep: String?
    @Option(help: "Run the story against a running server instead of starting loyalty-server for it.")
    var server: String?
    @Option(help: "That server's operator token (default: $LOYALTY_ADMIN_TOKEN).") var token: String?
    @Flag(name: .long, help: "Print exactly one JSON document on stdout.") var json = false

    func validate() throws {
        if server != nil && (token ?? ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"]) == nil {
            throw ValidationError(
                "Please give --token (or LOYALTY_ADMIN_TOKEN) with --server: the story uses the till.")
        }
    }

    func run() async throws {
        let output = Output(json: json)
        let base: URL
        if let keep {
            base = URL(fileURLWithPath: keep)
            if let existing = try? FileManager.default.contentsOfDirectory(atPath: base.path), !existing.isEmpty {
                throw ValidationError("Please give --keep a new or empty directory; \(base.path) is not empty.")
            }
        } else {
            base = FileManager.default.temporaryDirectory.appendingPathComponent(
                "loyalty-demo-\(UUID().uuidString.prefix(8))")
        }
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(at: base) } }

        if let server {
            let story = Story(base: base, server: try serverURL(server), admin: try adminClient(server), output: output)
            try await story.run()
            return
        }
        // The demo's own server: a `loyalty-server` child process on the default SQLite store, on a free port.
        let operatorToken = "demo-operator-\(UUID().uuidString)"
        let data = base.appendingPathComponent("server")
        let server = try ServerProcess.start(data: data, operatorToken: operatorToken) {
            output.narrate(output.dim($0))
        }
        defer { server.stop() }
        output.narrate(output.dim("Server on \(server.url) with its SQLite store in \(data.path)"))
        try await Story(
            base: base, server: server.url, admin: AdminClient(serverURL: server.url, token: operatorToken),
            output: output
        ).run()
        if keep != nil {
            output.narrate(
                "\nKept in \(base.path). Explore: loyalty --device \(base.appendingPathComponent("phone").path) balance "
                    + "(the demo's server is stopped; start one on \(data.path) to sync again).")
        }
    }

    private func adminClient(_ server: String) throws -> AdminClient {
        AdminClient(
            serverURL: try serverURL(server),
            token: token ?? ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"] ?? "")
    }
}

/// The story the demo tells, step by step.
struct Story {
    let base: URL
    let server: URL
    let admin: AdminClient
    let output: Output

    func run() async throws {
        var steps: [[String: Any]] = []
        var number = 0
        func say(_ title: String, _ details: [String] = []) {
            number += 1
            steps.append(["step": number, "title": title, "details": details])
            output.narrate("\n" + output.bold("\(number). \(title)"))
            for line in details { output.narrate("   " + line) }
        }

        let phone = try DeviceContext(directory: base.appendingPathComponent("phone"))
        let tablet = try DeviceContext(directory: base.appendingPathComponent("tablet"))
        let email = "anna-\(UUID().uuidString.prefix(6).lowercased())@example.de"

        _ = try await phone.engine(serverURL: server).enroll(
            Registration(name: "Anna Schmidt", email: email, phone: "+49 30 1000000"), password: "correct horse",
            deviceName: "phone", serverURL: server.absoluteString)
        _ = try await tablet.engine(serverURL: server).login(
            email: email, password: "correct horse", deviceName: "tablet", serverURL: server.absoluteString)
        let member = try require(try phone.store.identity()).memberID
        say(
            "Anna enrols on her phone and signs in on her tablet",
            [
                "member \(member), card \(try require(try phone.store.identity()).cardNumber)"
            ])

        let spa = "spa-day-\(UUID().uuidString.prefix(4).lowercased())"
        _ = try await admin.call {
            try await $0.adminAdjustPoints(
                path: .init(memberID: member.rawValue), body: .json(.init(points: 1000, reason: "welcome bonus"))
            ).created
        }
        _ = try await admin.call {
            try await $0.adminCreateReward(body: .json(.init(id: spa, title: "Spa day voucher", cost: 700))).created
        }
        _ = try await sync(phone)
        _ = try await sync(tablet)
        say(
            "The programme credits a welcome bonus and adds a 700-point spa voucher; both devices sync",
            [
                "phone: \(try balance(phone)) points, tablet: \(try balance(tablet)) points",
                "each device holds an allowance: points reserved for it alone, so that offline redemptions within "
                    + "them cannot bounce (phone \(try reserved(phone)), tablet \(try reserved(tablet)))",
            ])

        try phone.setOnline(false)
        try tablet.setOnline(false)
        say("Both devices go offline (airplane mode)")

        try record(phone, .activateOffer("welcome-10"))
        try record(phone, .redeemOffer("welcome-10"))
        try record(phone, .setProfileField(.phone, value: "+49 30 1111111", basedOn: nil))
        try record(phone, .redeemReward(RewardID(spa)))
        say(
            "Offline, the phone redeems the single-use 10% offer, changes the phone number and buys the spa voucher",
            [
                "the spa voucher costs more than the phone's allowance, so it is provisional: the server decides",
                "phone shows \(try balance(phone)) points, offer \(offerState(phone, "welcome-10")), \(try phone.store.status().pending) changes queued",
            ])

        // Later by more than the devices' clock offsets can be wrong by (each is measured within half a round trip).
        try await Task.sleep(for: .milliseconds(50))
        try record(tablet, .activateOffer("welcome-10"))
        try record(tablet, .redeemOffer("welcome-10"))
        try record(tablet, .setProfileField(.phone, value: "+49 30 2222222", basedOn: nil))
        try record(tablet, .redeemReward(RewardID(spa)))
        say(
            "A moment later, the tablet does the same with another phone number: it too believes it can spend the points",
            [
                "tablet shows \(try balance(tablet)) points, offer \(offerState(tablet, "welcome-10")), \(try tablet.store.status().pending) changes queued"
            ])

        let card = try require(try phone.store.identity()).cardNumber
        let purchase = try await admin.call {
            try await $0.adminRecordPurchase(body: .json(.init(amount: "120.00", cardNumber: card))).created.body.json
        }
        say(
            "Meanwhile at the till, a 120.00 EUR purchase is credited to Anna's card",
            [
                "\(purchase.points ?? 0) points, pending for the 14-day return window"
            ])

        try phone.setOnline(true)
        let phoneReport = try await sync(phone)
        say(
            "The phone comes back online and syncs",
            [describe(phoneReport)] + phoneReport.notices.map { "notice: \($0.message)" })

        try tablet.setOnline(true)
        let tabletReport = try await sync(tablet)
        say(
            "The tablet comes back online and syncs: the server decides",
            [describe(tabletReport)] + tabletReport.notices.map { "notice: \($0.message)" })

        let phoneAgain = try await sync(phone)
        say(
            "The phone syncs once more and learns what the tablet changed",
            [describe(phoneAgain)] + phoneAgain.notices.map { "notice: \($0.message)" })

        // A sync can leave something for the other device to pull (a fresh allowance for the phone, whose points
        // the spa voucher used): both sync until neither has anything new.
        for _ in 0..<3 {
            let reports = [try await sync(phone), try await sync(tablet)]
            if reports.allSatisfy({ $0.pulled == 0 && $0.pushed == 0 }) { break }
        }

        // The side-by-side view.
        let detail = try await admin.call {
            try await $0.adminShowMember(path: .init(memberID: member.rawValue)).ok.body.json
        }
        let rows: [(String, String, String, String)] = [
            ("available points", "\(try balance(phone))", "\(try balance(tablet))", "\(detail.available)"),
            (
                "pending points", "\(try require(phone.store.view).ledger.pendingPoints)",
                "\(try require(tablet.store.view).ledger.pendingPoints)", "\(detail.pending)"
            ),
            (
                "phone number", try require(phone.store.view).profileValue(.phone) ?? "-",
                try require(tablet.store.view).profileValue(.phone) ?? "-",
                detail.profile.additionalProperties["phone"] ?? "-"
            ),
            ("offer welcome-10", offerState(phone, "welcome-10"), offerState(tablet, "welcome-10"), "-"),
            ("spa vouchers", "\(vouchers(phone, spa))", "\(vouchers(tablet, spa))", "-"),
            ("pending changes", "\(try phone.store.status().pending)", "\(try tablet.store.status().pending)", "-"),
        ]
        let agree =
            phone.store.view == tablet.store.view && phone.store.confirmed == tablet.store.confirmed
            && rows.allSatisfy { $0.3 == "-" || ($0.1 == $0.2 && $0.2 == $0.3) }
        output.narrate("\n" + output.bold(pad("", 18) + pad("phone", 18) + pad("tablet", 18) + "server"))
        for row in rows { output.narrate(pad(row.0, 18) + pad(row.1, 18) + pad(row.2, 18) + row.3) }
        output.narrate(
            "\n"
                + (agree
                    ? output.green("✓ Both devices and the server agree.")
                    : output.red("✗ The devices and the server disagree.")))
        output.emit(
            [
                "steps": steps, "agree": agree, "member": member.rawValue,
                "final": Dictionary(
                    uniqueKeysWithValues: rows.map { ($0.0, ["phone": $0.1, "tablet": $0.2, "server": $0.3]) }),
            ],
            text: "")
        guard agree else { throw LoyaltyError("disagree", "the devices and the server disagree: this is a bug") }
    }

    private func sync(_ device: DeviceContext) async throws -> SyncReport {
        let report = try await device.engine(serverURL: server).sync()
        guard report.outcome == .synced else {
            throw LoyaltyError("sync_failed", "a demo sync failed: \(report.outcome)")
        }
        return report
    }

    private func record(_ device: DeviceContext, _ mutation: Mutation) throws {
        try device.store.record(mutation, at: device.now)
    }

    private func balance(_ device: DeviceContext) throws -> Int { try require(device.store.view).ledger.available }

    private func reserved(_ device: DeviceContext) throws -> Int {
        try device.store.allowance()?.spendable(at: try device.store.correctedTime(Timestamp(Date()))) ?? 0
    }

    private func offerState(_ device: DeviceContext, _ id: OfferID) -> String {
        device.store.offers(at: device.now).first { $0.offer.id == id }?.state.rawValue ?? "-"
    }

    private func vouchers(_ device: DeviceContext, _ reward: String) -> Int {
        device.store.view?.vouchers.values.filter { $0.rewardID.rawValue == reward }.count ?? 0
    }

    private func describe(_ report: SyncReport) -> String {
        "pushed \(report.pushed) (\(report.applied) applied, \(report.rejected) rejected), pulled \(report.pulled) changes"
    }

    private func require<T>(_ value: T?) throws -> T {
        guard let value else { throw LoyaltyError("demo", "the demo's device has no data") }
        return value
    }
}
