internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// Screens

struct CardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "card", abstract: "The member card: number, status, tier.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let view = try memberView(try global.context())
        let card = view.activeCard ?? view.cards.values.max { $0.issuedAt < $1.issuedAt }
        guard let card else { throw LoyaltyError("no_card", "the member has no card yet: sync first") }
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
        } catch let error as LoyaltyError {
            throw error
        } catch {
            throw LoyaltyError("failed", "the device list is not available: \(error)", cause: error)
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
            } catch let error as LoyaltyError {
                throw error
            } catch {
                throw LoyaltyError("failed", "the device could not be revoked: \(error)", cause: error)
            }
            global.output.emit(["revoked": id], text: "Device \(id) revoked.")
        }
    }
}
