internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// MARK: - Signing in

struct Enroll: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Join the programme: creates the member, their card and this device, then syncs.",
        discussion: """
            The password is asked for on a terminal, or read from standard input with --password-stdin; \
            --password works too, but other users of the machine can see arguments in the process list.

            Example: printf '%s\\n' 'correct horse' | loyalty enroll --server http://127.0.0.1:8080 \
            --name 'Anna Schmidt' --email anna@example.de --password-stdin
            """
    )
    @OptionGroup var global: GlobalOptions
    @Option(help: "The server's URL (https://, or http:// to this machine; --insecure allows http:// elsewhere).")
    var server: String
    @Flag(help: "Allow a plain http:// server that is not on this machine (passwords and tokens travel unencrypted).")
    var insecure = false
    @Option(help: "Full name.") var name: String
    @Option(help: "E-mail address (used to sign in).") var email: String
    @OptionGroup var secret: PasswordOptions
    @Option(help: "Phone number in international form, e.g. '+49 30 1234567'.") var phone: String?
    @Option(help: "Birth date, YYYY-MM-DD.") var birthdate: String?
    @Option(help: "A name for this device.") var deviceName: String?

    func run() async throws {
        let context = try global.context()
        let url = try serverURL(server, insecure: insecure)
        let password = try secret.resolve()
        let registration = Registration(name: name, email: email, phone: phone, birthdate: birthdate)
        let report: SyncReport
        do {
            report = try await context.engine(serverURL: url).enroll(
                registration, password: password, deviceName: deviceName ?? "terminal", serverURL: url.absoluteString,
                progress: global.output.syncProgress)
            global.output.endProgress()
        } catch {
            throw CLIError("enroll_failed", "enrolment failed: \(error)")
        }
        try signedIn(context, report: report, verb: "Enrolled")
    }

    func signedIn(_ context: DeviceContext, report: SyncReport, verb: String) throws {
        guard let identity = try context.store.identity() else { throw CLIError("failed", "no session was stored") }
        global.output.emit(
            [
                "member": identity.memberID.rawValue, "device": identity.deviceID.rawValue, "card": identity.cardNumber,
                "pulled": report.pulled,
            ],
            text:
                "\(verb): member \(identity.memberID), device \(identity.deviceID), card \(identity.cardNumber) (\(report.pulled) changes pulled)"
        )
    }
}

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sign this device in to an existing member, then sync.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The server's URL (https://, or http:// to this machine; --insecure allows http:// elsewhere).")
    var server: String
    @Flag(help: "Allow a plain http:// server that is not on this machine (passwords and tokens travel unencrypted).")
    var insecure = false
    @Option(help: "E-mail address.") var email: String
    @OptionGroup var secret: PasswordOptions
    @Option(help: "A name for this device.") var deviceName: String?

    func run() async throws {
        let context = try global.context()
        let url = try serverURL(server, insecure: insecure)
        let password = try secret.resolve()
        let report: SyncReport
        do {
            report = try await context.engine(serverURL: url).login(
                email: email, password: password, deviceName: deviceName ?? "terminal", serverURL: url.absoluteString,
                progress: global.output.syncProgress)
            global.output.endProgress()
        } catch {
            throw CLIError("login_failed", "sign-in failed: \(error)")
        }
        guard let identity = try context.store.identity() else { throw CLIError("failed", "no session was stored") }
        global.output.emit(
            [
                "member": identity.memberID.rawValue, "device": identity.deviceID.rawValue, "card": identity.cardNumber,
                "pulled": report.pulled,
            ],
            text:
                "Signed in: member \(identity.memberID), device \(identity.deviceID) (\(report.pulled) changes pulled)")
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign out: revoke this device on the server and wipe its member data (unsent changes are lost).",
        discussion: """
            Online, the server revokes the device first, so that a copy of its refresh token is worth nothing. \
            Offline (or when the server cannot be reached) the data is wiped all the same and the output says that \
            the server was not told: revoke the device from another one with 'loyalty device revoke ID'.
            """)
    @OptionGroup var global: GlobalOptions
    func run() async throws {
        let context = try global.context()
        let pending = try context.store.status().pending
        var revoked = false
        var reason = "this device is not signed in"
        if let identity = try context.store.identity() {
            do {
                try await context.engine().revoke(identity.deviceID)
                revoked = true
            } catch {
                reason = "\(error)"
            }
        }
        try context.store.wipe()
        let server =
            revoked
            ? "the server revoked this device"
            : "the server was not told (\(reason)): revoke this device from another one with 'loyalty device revoke'"
        global.output.emit(
            ["signedOut": true, "discarded": pending, "revokedOnServer": revoked],
            text: "Signed out; \(pending) unsent changes were discarded; \(server).")
    }
}

struct PasswordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password", abstract: "Change the member's password (every other device is signed out).",
        discussion: """
            Asks for the current and the new password on a terminal, or reads them from the first two lines of \
            standard input with --password-stdin. Needs the network.
            """)
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Read the current password, then the new one, from the first two lines of standard input.")
    var passwordStdin = false

    func run() async throws {
        let context = try global.context()
        let (current, new): (String, String)
        if passwordStdin {
            guard let first = readLine(strippingNewline: true), let second = readLine(strippingNewline: true) else {
                throw CLIError(
                    "no_password", "--password-stdin needs two lines: the current password, then the new one")
            }
            (current, new) = (first, second)
        } else {
            guard isatty(STDIN_FILENO) == 1, let first = getpass("Current password: ").map({ String(cString: $0) }),
                let second = getpass("New password: ").map({ String(cString: $0) })
            else {
                throw CLIError("no_password", "give the passwords on a terminal prompt, or with --password-stdin")
            }
            (current, new) = (first, second)
        }
        do {
            try await context.engine().changePassword(current: current, new: new)
        } catch {
            throw CLIError("password_change_failed", "the password was not changed: \(error)")
        }
        global.output.emit(
            ["changed": true], text: "Password changed; every other device of the member was signed out.")
    }
}

struct SignOutEverywhere: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-out-everywhere",
        abstract: "Revoke every device of the member, this one included, and wipe this one (needs the network).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        do {
            try await context.engine().signOutEverywhere()
        } catch {
            throw CLIError("failed", "the devices were not signed out: \(error)")
        }
        let pending = try context.store.status().pending
        try context.store.wipe()
        global.output.emit(
            ["signedOut": true, "discarded": pending],
            text: "Every device of the member is signed out; this one was wiped (\(pending) unsent changes discarded).")
    }
}

/// A server's URL: https anywhere, plain http only to this machine unless `insecure`.
func serverURL(_ text: String, insecure: Bool = false) throws -> URL {
    guard let url = URL(string: text), let scheme = url.scheme, ["http", "https"].contains(scheme),
        let host = url.host
    else {
        throw ValidationError("Please give --server as a URL such as https://loyalty.example or http://127.0.0.1:8080.")
    }
    let loopback = host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    if scheme == "http", !loopback, !insecure {
        throw ValidationError(
            "Please use https:// for a server that is not on this machine (passwords and tokens would travel "
                + "unencrypted), or add --insecure if you mean it.")
    }
    return url
}

/// How a command gets the member's password: never needed as an argument.
struct PasswordOptions: ParsableArguments {
    @Option(
        help: "The password, at least 8 characters (visible in the process list: prefer a prompt or --password-stdin).")
    var password: String?
    @Flag(help: "Read the password from the first line of standard input.")
    var passwordStdin = false

    func validate() throws {
        if password != nil && passwordStdin {
            throw ValidationError("Please give the password one way: --password or --password-stdin.")
        }
    }

    /// The password: the option, standard input, or a prompt on the terminal (not echoed).
    func resolve() throws -> String {
        if let password { return password }
        if passwordStdin {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw CLIError("no_password", "--password-stdin read no password from standard input")
            }
            return line
        }
        guard isatty(STDIN_FILENO) == 1, let typed = getpass("Password: ") else {
            throw CLIError(
                "no_password", "give the password on a terminal prompt, or with --password-stdin (or --password)")
        }
        return String(cString: typed)
    }
}

// MARK: - Simulation

struct Network: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn the simulated network on or off (off is airplane mode: actions queue, sync fails).")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "on or off") var state: String

    func validate() throws {
        guard ["on", "off"].contains(state) else { throw ValidationError("Please say 'on' or 'off'.") }
    }

    func run() async throws {
        let context = try global.context()
        try context.setOnline(state == "on")
        global.output.emit(["online": state == "on"], text: "Network \(state).")
    }
}

struct ClockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clock", abstract: "Simulate a wrong device clock.", subcommands: [Skew.self])

    struct Skew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set how far this device's clock is off, e.g. +1d, -2h, 0s.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "A signed duration: +1d, -2h, 90m, 0s.") var skew: String

        func validate() throws {
            guard let span = TimeSpan(parsing: skew) else {
                throw ValidationError("Please write the skew like +1d, -2h, 90m or 0s.")
            }
            guard span.magnitude <= .days(3650) else {
                throw ValidationError("Please keep the skew within ten years (3650d).")
            }
        }

        func run() async throws {
            let context = try global.context()
            let span = TimeSpan(parsing: skew) ?? .zero
            try context.setSkew(span)
            global.output.emit(["skew": span.description], text: "This device's clock is now off by \(span).")
        }
    }
}

// MARK: - Sync and status

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send queued changes and bring back what the server decided.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let output = global.output
        let report = try await context.engine().sync(progress: output.syncProgress)
        output.endProgress()
        switch report.outcome {
        case .synced: break
        case .offline(let message):
            throw CLIError("offline", "offline: \(message); \(try context.store.status().pending) changes stay queued")
        case .signedOut(let message):
            throw CLIError("signed_out", "signed out: \(message); log in again (changes are kept)")
        case .revoked: throw CLIError("device_revoked", "this device was signed out by the member; its data was wiped")
        case .upgradeRequired(let message): throw CLIError("upgrade_required", message)
        case .failed(let message): throw CLIError("sync_failed", message)
        }
        var lines = [
            "Synced: \(report.pushed) pushed (\(report.applied) applied, \(report.rejected) rejected), \(report.pulled) pulled."
        ]
        for notice in report.notices { lines.append("  \(output.bold("notice")): \(notice.message)") }
        output.emit(
            [
                "pushed": report.pushed, "applied": report.applied, "rejected": report.rejected,
                "pulled": report.pulled,
                "notices": report.notices.map(noticeJSON),
            ],
            text: lines.joined(separator: "\n"))
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Who this device is, and where syncing stands.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let status = try context.store.status()
        let identity = try context.store.identity()
        let lastSync = status.lastSyncAt.map { $0.description } ?? "never"
        var text = [
            "Member:   \(identity?.memberID.rawValue ?? "(not signed in)")",
            "Device:   \(identity?.deviceID.rawValue ?? "-")",
            "Network:  \(context.isOnline ? "on" : "off")",
            "Pending:  \(status.pending)",
            "Synced:   \(lastSync)",
            "Notices:  \(status.unreadNotices) unread",
        ]
        if status.condition != .ready { text.append("State:    \(status.condition.rawValue)") }
        if let error = status.lastError { text.append("Last error: \(error)") }
        global.output.emit(
            [
                "member": identity?.memberID.rawValue as Any, "device": identity?.deviceID.rawValue as Any,
                "online": context.isOnline, "pending": status.pending,
                "lastSync": status.lastSyncAt?.description as Any,
                "notices": status.unreadNotices, "condition": status.condition.rawValue,
                "lastError": status.lastError as Any,
            ],
            text: text.joined(separator: "\n"))
    }
}

/// The member's view, or a clear error before the first sync.
func memberView(_ context: DeviceContext) throws -> MemberState {
    guard try context.store.identity() != nil else {
        throw CLIError("not_signed_in", "this device is not signed in: run 'loyalty enroll' or 'loyalty login' first")
    }
    guard let view = context.store.view else {
        throw CLIError("not_bootstrapped", "this device has no data yet: run 'loyalty sync' while online")
    }
    return view
}

func noticeJSON(_ notice: Notice) -> [String: Any] {
    [
        "id": notice.id, "kind": notice.kind.rawValue, "message": notice.message,
        "mutation": notice.sequence.map { Int($0) } as Any,
    ]
}

// MARK: - Screens

struct CardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card", abstract: "The member card: number, status, tier.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let card = view.activeCard ?? view.cards.values.max { $0.issuedAt < $1.issuedAt }
        guard let card else { throw CLIError("no_card", "the member has no card yet: sync first") }
        let tier = view.currentTier
        var lines = [
            "Card:    \(card.number)", "Status:  \(card.status.rawValue)", "Tier:    \(tier.name)",
            "Barcode: \(card.barcodePayload)",
        ]
        for other in view.cards.values where other.number != card.number {
            lines.append("Also:    \(other.number) (\(other.status.rawValue))")
        }
        if card.status == .active, let code = QRCode(card.barcodePayload) {
            lines.append("")
            lines += code.render().map { "  " + $0 }
        }
        global.output.emit(
            [
                "number": card.number.digits, "status": card.status.rawValue, "tier": tier.id,
                "barcode": card.barcodePayload,
            ],
            text: lines.joined(separator: "\n"))
    }
}

struct Balance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Points: available, pending, expiring soon.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let view = try memberView(context)
        let now = try context.store.correctedTime(context.now)
        let balance = view.balance(at: now)
        let allowance = try context.store.allowance()
        let guaranteed = allowance?.spendable(at: now) ?? 0
        var lines = [
            "Available: \(balance.available) points", "Pending:   \(balance.pending) points (within the return window)",
        ]
        if balance.owed > 0 { lines.append("Owed:      \(balance.owed) points (a return of points already spent)") }
        for expiring in balance.expiringSoon {
            lines.append("Expiring:  \(expiring.amount) points on \(expiring.expiresAt)")
        }
        if let allowance, guaranteed > 0 {
            lines.append(
                "Offline:   \(guaranteed) points reserved for this device: redemptions within them are guaranteed "
                    + "until \(allowance.leaseUntil)")
        } else {
            lines.append("Offline:   no points reserved for this device; offline redemptions are provisional")
        }
        global.output.emit(
            [
                "available": balance.available, "pending": balance.pending, "owed": balance.owed,
                "allowance": guaranteed, "allowanceUntil": allowance.map { $0.leaseUntil.description } as Any,
                "expiringSoon": balance.expiringSoon.map {
                    ["amount": $0.amount, "expiresAt": $0.expiresAt.description]
                },
            ],
            text: lines.joined(separator: "\n"))
    }
}

struct History: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Points movements, newest first (pending ones first).")
    @OptionGroup var global: GlobalOptions
    @Option(help: "How many.") var limit = 20

    func validate() throws {
        guard (1...10_000).contains(limit) else { throw ValidationError("Please give --limit from 1 to 10000.") }
    }

    func run() async throws {
        let context = try global.context()
        _ = try memberView(context)
        let entries = try context.store.history(limit: limit)
        let lines = entries.map {
            "\(pad($0.at.description, 26)) \(pad($0.kind.rawValue, 11)) \($0.points >= 0 ? "+" : "")\($0.points)"
        }
        global.output.emit(
            [
                "entries": entries.map {
                    ["id": $0.id.rawValue, "kind": $0.kind.rawValue, "amount": $0.points, "at": $0.at.description]
                }
            ],
            text: lines.isEmpty ? "No movements yet." : lines.joined(separator: "\n"))
    }
}

struct Offers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Offers for this member and their state.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        _ = try memberView(context)
        let offers = context.store.offers(at: try context.store.correctedTime(context.now))
        global.output.emit(
            [
                "offers": offers.map {
                    ["id": $0.offer.id.rawValue, "title": $0.offer.title, "state": $0.state.rawValue]
                }
            ],
            text: offers.map { "\(pad($0.offer.id.rawValue, 16)) \(pad($0.state.rawValue, 10)) \($0.offer.title)" }
                .joined(separator: "\n"))
    }
}

struct Rewards: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The reward catalogue.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let rewards = view.rewards.values.filter(\.isActive).sorted { ($0.cost, $0.id) < ($1.cost, $1.id) }
        global.output.emit(
            [
                "rewards": rewards.map {
                    ["id": $0.id.rawValue, "title": $0.title, "cost": $0.cost, "stock": $0.stock as Any]
                }
            ],
            text: rewards.map { "\(pad($0.id.rawValue, 14)) \(pad("\($0.cost) pts", 10)) \($0.title)" }.joined(
                separator: "\n"))
    }
}

struct Vouchers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Vouchers from redeemed rewards (guaranteed or provisional until the server confirms).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let vouchers = view.vouchers.values.sorted { $0.issuedAt > $1.issuedAt }
        global.output.emit(
            [
                "vouchers": vouchers.map {
                    [
                        "id": $0.id.rawValue, "reward": $0.rewardID.rawValue, "code": $0.code as Any,
                        "status": $0.status.rawValue,
                    ]
                }
            ],
            text: vouchers.isEmpty
                ? "No vouchers."
                : vouchers.map {
                    "\(pad($0.code ?? "(no code yet)", 18)) \(pad($0.status.rawValue, 12)) \($0.rewardID)"
                }.joined(separator: "\n"))
    }
}

struct Surveys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Surveys, their questions, and whether they were answered.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let surveys = view.surveys.values.sorted { $0.id < $1.id }
        var lines: [String] = []
        for survey in surveys {
            lines.append(
                "\(survey.id): \(survey.title) (\(survey.points) points)\(view.surveyResponses[survey.id] != nil ? " - answered" : "")"
            )
            for question in survey.questions {
                let kind: String
                switch question.kind {
                case .choice(let options): kind = options.joined(separator: " | ")
                case .rating(let maximum): kind = "1 to \(maximum)"
                case .text: kind = "text"
                }
                lines.append("  \(question.id): \(question.text) [\(kind)]\(question.isRequired ? "" : " (optional)")")
            }
        }
        global.output.emit(
            [
                "surveys": surveys.map {
                    [
                        "id": $0.id.rawValue, "title": $0.title, "points": $0.points,
                        "answered": view.surveyResponses[$0.id] != nil,
                    ]
                }
            ],
            text: lines.joined(separator: "\n"))
    }
}

struct ProfileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Show the profile, or change a field ('profile set phone \"+49 30 1234567\"').",
        subcommands: [Show.self, Set.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the profile.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let view = try memberView(try global.context())
            var document: [String: Any] = [:]
            var lines: [String] = []
            for field in ProfileField.allCases {
                document[field.rawValue] = view.profileValue(field) as Any
                lines.append("\(pad(field.rawValue + ":", 11)) \(view.profileValue(field) ?? "-")")
            }
            global.output.emit(document, text: lines.joined(separator: "\n"))
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a field: name, email, phone, birthdate, address. Works offline.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "name, email, phone, birthdate or address") var field: String
        @Argument(help: "The new value; empty clears an optional field.") var value: String

        func validate() throws {
            guard ProfileField(rawValue: field) != nil else {
                throw ValidationError(
                    "Please name one of: \(ProfileField.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
        }

        func run() async throws {
            let field = ProfileField(rawValue: self.field)!
            try await act(
                .setProfileField(field, value: value.isEmpty ? nil : value, basedOn: nil), global: global,
                done: "\(field.rawValue) set")
        }
    }
}

struct Consents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Consents and when each last changed.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let rows = ConsentKind.allCases.map { kind in (kind, view.consents.current(kind)) }
        global.output.emit(
            [
                "consents": rows.map {
                    [
                        "kind": $0.0.rawValue, "granted": $0.1?.granted ?? false,
                        "changedAt": $0.1?.at.description as Any,
                    ]
                }
            ],
            text: rows.map {
                "\(pad($0.0.rawValue, 16)) \(($0.1?.granted ?? false) ? "granted  " : "withdrawn") \($0.1.map { "since \($0.at)" } ?? "(never set)")"
            }
            .joined(separator: "\n"))
    }
}

struct Notices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the server decided differently, newest first (marks them read).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let context = try global.context()
        let notices = try context.store.notices()
        try context.store.markNoticesRead()
        global.output.emit(
            ["notices": notices.map(noticeJSON)],
            text: notices.isEmpty
                ? "No notices."
                : notices.map { "\($0.isRead ? " " : "*") \($0.createdAt) \($0.message)" }.joined(separator: "\n"))
    }
}

struct Devices: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The member's devices (needs the network).")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let devices: [DeviceSummary]
        do {
            devices = try await global.context().engine().devices()
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError("failed", "the device list is not available: \(error)")
        }
        global.output.emit(
            [
                "devices": devices.map {
                    ["id": $0.id.rawValue, "name": $0.name, "current": $0.isCurrent, "revoked": $0.revokedAt != nil]
                }
            ],
            text: devices.map {
                "\(pad($0.id.rawValue, 16)) \(pad($0.name, 12)) \($0.isCurrent ? "(this device)" : $0.revokedAt != nil ? "(revoked)" : "")"
            }
            .joined(separator: "\n"))
    }
}

struct DeviceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "device", abstract: "Manage the member's devices.", subcommands: [Revoke.self])

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a device (a lost phone): it wipes itself at its next contact.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The device id, from 'loyalty devices'.") var id: String

        func run() async throws {
            do {
                try await global.context().engine().revoke(DeviceID(id))
            } catch let error as CLIError {
                throw error
            } catch {
                throw CLIError("failed", "the device could not be revoked: \(error)")
            }
            global.output.emit(["revoked": id], text: "Device \(id) revoked.")
        }
    }
}

// MARK: - Actions

/// Records a member action: applied at once, queued for the next sync. A refusal by the device's own view is
/// reported with nothing queued.
func act(_ mutation: Mutation, global: GlobalOptions, done: String) async throws {
    let context = try global.context()
    _ = try memberView(context)
    let envelope: MutationEnvelope
    let guaranteed: Bool
    do {
        let (recorded, outcome) = try context.store.record(mutation, at: context.now)
        envelope = recorded
        guaranteed = outcome.isGuaranteed
    } catch let error as DeviceStoreError {
        throw CLIError(error.rejection?.code.rawValue ?? error.code.rawValue, error.message)
    }
    let pending = try context.store.status().pending
    let promise = guaranteed ? "; guaranteed by this device's allowance" : ""
    global.output.emit(
        ["mutation": Int(envelope.sequence), "kind": mutation.kind, "pending": pending, "guaranteed": guaranteed],
        text: "\(done) (pending sync; \(pending) change\(pending == 1 ? "" : "s") queued\(promise)).")
}

struct OfferCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "offer", abstract: "Activate or redeem an offer.", subcommands: [Activate.self, Redeem.self])

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Activate (clip) an offer. Works offline.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The offer id, from 'loyalty offers'.") var id: String
        func run() async throws {
            try await act(.activateOffer(OfferID(id)), global: global, done: "Offer \(id) activated")
        }
    }

    struct Redeem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Use an offer. Works offline.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The offer id.") var id: String
        func run() async throws {
            try await act(.redeemOffer(OfferID(id)), global: global, done: "Offer \(id) redeemed")
        }
    }
}

struct RewardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reward", abstract: "Redeem a reward.", subcommands: [Redeem.self])

    struct Redeem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Spend points on a reward. Works offline: within this device's allowance (see 'loyalty balance') the "
                + "voucher is guaranteed, beyond it provisional until the server confirms it.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The reward id, from 'loyalty rewards'.") var id: String
        func run() async throws {
            try await act(.redeemReward(RewardID(id)), global: global, done: "Reward \(id) redeemed")
        }
    }
}

struct ReceiptCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipt", abstract: "Claim a receipt.", subcommands: [Claim.self])

    struct Claim: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Claim a till receipt's points. Works offline; points follow after sync.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The code printed on the receipt.") var code: String
        func run() async throws {
            try await act(.claimReceipt(code: code), global: global, done: "Receipt \(code) claimed")
        }
    }
}

struct SurveyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "survey", abstract: "Answer a survey.", subcommands: [Answer.self])

    struct Answer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Answer a survey. Works offline.",
            discussion: "Example: loyalty survey answer store-visit --answer rating=5 --answer 'store=Berlin Mitte'")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The survey id, from 'loyalty surveys'.") var id: String
        @Option(name: .customLong("answer"), help: "QUESTION=ANSWER, once per question.") var answers: [String] = []

        func validate() throws {
            guard !answers.isEmpty else { throw ValidationError("Please give at least one --answer QUESTION=ANSWER.") }
            guard answers.allSatisfy({ $0.contains("=") }) else {
                throw ValidationError("Please write each answer as QUESTION=ANSWER.")
            }
        }

        func run() async throws {
            var parsed: [String: String] = [:]
            for answer in answers {
                let parts = answer.split(separator: "=", maxSplits: 1)
                parsed[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            try await act(.answerSurvey(SurveyID(id), answers: parsed), global: global, done: "Survey \(id) answered")
        }
    }
}

struct ConsentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Grant or withdraw a consent.", subcommands: [Set.self])

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant or withdraw: marketing-email, marketing-sms, marketing-push, profiling. Works offline.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "marketing-email, marketing-sms, marketing-push or profiling") var kind: String
        @Argument(help: "granted or withdrawn") var state: String

        func validate() throws {
            guard ConsentKind(rawValue: kind) != nil else {
                throw ValidationError(
                    "Please name one of: \(ConsentKind.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            guard ["granted", "withdrawn"].contains(state) else {
                throw ValidationError("Please say 'granted' or 'withdrawn'.")
            }
        }

        func run() async throws {
            try await act(
                .setConsent(ConsentKind(rawValue: kind)!, granted: state == "granted"), global: global,
                done: "Consent \(kind) \(state)")
        }
    }
}
