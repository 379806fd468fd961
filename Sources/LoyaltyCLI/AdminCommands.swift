internal import ArgumentParser
internal import Foundation
internal import HTTPTypes
internal import LoyaltyAPI
internal import LoyaltyCore
internal import OpenAPIRuntime
internal import OpenAPIURLSession

/// Options of every admin command.
struct AdminOptions: ParsableArguments {
    @Option(help: "The server's URL (https://, or http:// to this machine; --insecure allows http:// elsewhere).")
    var server: String
    @Option(help: "The operator token (better: $LOYALTY_ADMIN_TOKEN; an argument shows in the process list).")
    var token: String?
    @Flag(help: "Allow a plain http:// server that is not on this machine (the token travels unencrypted).")
    var insecure = false
    @Flag(name: .long, help: "Print exactly one JSON document on stdout.") var json = false

    var output: Output { Output(json: json) }

    func client() throws -> AdminClient {
        guard let token = token ?? ProcessInfo.processInfo.environment["LOYALTY_ADMIN_TOKEN"], !token.isEmpty else {
            throw ValidationError("Please give --token or set LOYALTY_ADMIN_TOKEN.")
        }
        return AdminClient(serverURL: try serverURL(server, insecure: insecure), token: token)
    }
}

/// The generated client with the operator token; error answers become ``LoyaltyError``s carrying the server's words.
struct AdminClient: Sendable {
    let client: Client

    init(serverURL: URL, token: String) {
        client = Client(
            serverURL: serverURL, configuration: .loyalty, transport: URLSessionTransport(),
            middlewares: [AdminAuth(token: token)])
    }

    func call<T: Sendable>(_ body: @Sendable (Client) async throws -> T) async throws -> T {
        do {
            return try await body(client)
        } catch let error as ClientError {
            if let cli = error.underlyingError as? LoyaltyError { throw cli }
            throw LoyaltyError("unreachable", "the server cannot be reached: \(error.underlyingError)")
        }
    }
}

struct AdminAuth: ClientMiddleware {
    let token: String

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, baseURL: URL, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        request.headerFields[.authorization] = "Bearer \(token)"
        let (response, responseBody) = try await next(request, body, baseURL)
        guard response.status.code >= 400 else { return (response, responseBody) }
        var code = "http_\(response.status.code)"
        var message = "the server answered \(response.status.code)"
        if let responseBody, let data = try? await Data(collecting: responseBody, upTo: 1 << 16),
            let error = try? JSONDecoder().decode(Components.Schemas.ErrorResponse.self, from: data)
        {
            code = error.error.code
            message = error.error.message
        }
        throw LoyaltyError(LoyaltyError.Code(rawValue: code), message)
    }
}

func createdJSON(_ created: Components.Schemas.Created) -> [String: Any] {
    var document: [String: Any] = ["id": created.id]
    if let number = created.number { document["number"] = number }
    if let code = created.code { document["code"] = code }
    if let points = created.points { document["points"] = points }
    if let member = created.memberID { document["member"] = member }
    return document
}

func parseDate(_ text: String, option: String) throws -> Date {
    guard let time = Timestamp.parse(text) else {
        throw ValidationError("Please give \(option) as a date (2026-12-31) or date-time (2026-12-31T18:00:00Z).")
    }
    return time.date
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The operator's console: the till, the catalogue, members, jobs and the test clock.",
        discussion:
            "Example: loyalty admin purchase --server http://127.0.0.1:8080 --token s3cret --card 4000019179411 --amount 42.50",
        subcommands: [
            MemberCommand.self, OfferAdmin.self, RewardAdmin.self, ReceiptAdmin.self, Purchase.self, TillRedeem.self,
            Return.self,
            CardAdmin.self, SurveyAdmin.self, SegmentAdmin.self, ReportAdmin.self, JobCommand.self, ClockAdmin.self,
            DeviceAdmin.self,
        ])

    struct MemberCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "member", abstract: "List or show members, their timelines; block or allow sign-in.",
            subcommands: [
                List.self, Show.self, Timeline.self, Export.self, Block.self, Unblock.self, Erase.self, SignIn.self,
            ])

        struct Export: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Everything the programme holds about a member, for a request at the service desk.",
                discussion: "The same document as `loyalty privacy export` (docs/privacy.md).")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member's id.") var id: String
            @Option(help: "Write the document to this file (created, owner-only; an existing file is kept).")
            var out: String?
            @OptionGroup var format: ExportFormat

            func validate() throws { try format.validate(out: out) }

            func run() async throws {
                let export = try await admin.client().call {
                    try await $0.adminExportMember(path: .init(memberID: id)).ok.body.json
                }
                try deliverExport(try export.document(), as: format.format, to: out, output: admin.output)
            }
        }

        struct Block: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Block a member (fraud, a lost card): points actions and the card are refused.",
                discussion: """
                    The member's devices can still read, withdraw consents and correct the profile; every points \
                    action is refused with a notice, the till refuses the card, and points reserved for the \
                    devices return to the balance. The reason is shown on the member's devices: write it for them.
                    Example: loyalty admin member block m-… --reason 'Card reported lost; call the service desk.'
                    """)
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member's id.") var id: String
            @Option(help: "Why, in words for the member (1 to 500 characters).") var reason: String

            func run() async throws {
                try await admin.client().call {
                    _ = try await $0.adminBlockMember(path: .init(memberID: id), body: .json(.init(reason: reason)))
                        .noContent
                }
                admin.output.emit(["blocked": id], text: "Member \(id) is blocked.")
            }
        }

        struct Unblock: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Lift a member's block.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member's id.") var id: String

            func run() async throws {
                try await admin.client().call {
                    _ = try await $0.adminUnblockMember(path: .init(memberID: id)).noContent
                }
                admin.output.emit(["unblocked": id], text: "Member \(id) is active again.")
            }
        }

        struct Erase: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Erase a member's personal data on their request (GDPR Art. 17).",
                discussion: """
                    The profile, e-mail, password, survey answers and device names are removed; the member record \
                    keeps only its pseudonymous id and the status erased; points and till transactions keep their \
                    amounts and dates; the consent history stays as proof; the points left are forfeited; every \
                    device is signed out and wipes itself. Cannot be undone. docs/privacy.md, "Erasure".
                    Example: loyalty admin member erase m-… --reason 'Request by e-mail of 2026-12-01'
                    """)
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member's id.") var id: String
            @Option(help: "Why (the member's request and its date; 1 to 500 characters).") var reason: String

            func run() async throws {
                let report = try await admin.client().call {
                    try await $0.adminEraseMember(path: .init(memberID: id), body: .json(.init(reason: reason))).ok
                        .body.json
                }
                admin.output.emit(
                    ["erased": id, "pointsForfeited": report.pointsForfeited, "devicesRevoked": report.devicesRevoked],
                    text: "Member \(id) is erased: \(report.pointsForfeited) points forfeited, "
                        + "\(report.devicesRevoked) devices signed out.")
            }
        }

        struct Timeline: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "A member's events, newest first, with their channel (app, till, operator, ...) and place.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member id.") var id: String
            @Option(help: "How many events (1 to 1000).") var limit = 100

            func run() async throws {
                let events = try await admin.client().call {
                    try await $0.adminMemberTimeline(path: .init(memberID: id), query: .init(limit: limit)).ok.body
                        .json.events
                }
                admin.output.emit(
                    [
                        "events": events.map {
                            [
                                "at": $0.at.formatted(.iso8601), "kind": $0.kind, "channel": $0.channel.rawValue,
                                "place": $0.place as Any, "points": $0.points as Any, "detail": $0.detail,
                            ] as [String: Any]
                        }
                    ],
                    text: events.map { event in
                        let points = event.points.map { $0 > 0 ? "+\($0)" : "\($0)" } ?? ""
                        let place = event.place.map { " @ \($0)" } ?? ""
                        return "\(event.at.formatted(.iso8601)) \(pad(event.kind, 10)) \(pad(points, 7)) "
                            + "\(event.channel.rawValue)\(place): \(event.detail)"
                    }.joined(separator: "\n"))
            }
        }

        struct SignIn: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "sign-in",
                abstract: "Block sign-in to a member's account (its devices are signed out), or allow it again.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member id.") var id: String
            @Flag(help: "Block sign-in.") var block = false
            @Flag(help: "Allow sign-in again.") var allow = false

            func validate() throws {
                guard block != allow else { throw ValidationError("Please give exactly one of --block or --allow.") }
            }

            func run() async throws {
                try await admin.client().call {
                    _ = try await $0.adminSetSignIn(path: .init(memberID: id), body: .json(.init(blocked: block)))
                        .noContent
                }
                admin.output.emit(
                    ["member": id, "signInBlocked": block],
                    text: block
                        ? "Sign-in to \(id) is blocked; its devices are signed out." : "\(id) may sign in again.")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Members in id order.")
            @OptionGroup var admin: AdminOptions
            @Option(help: "Show members after this id.") var after: String?
            @Option(help: "How many.") var limit = 100

            func run() async throws {
                let members = try await admin.client().call {
                    try await $0.adminListMembers(query: .init(after: after, limit: limit)).ok.body.json.members
                }
                admin.output.emit(
                    [
                        "members": members.map {
                            [
                                "id": $0.id, "name": $0.name, "email": $0.email, "status": $0.status.rawValue,
                                "card": $0.cardNumber as Any, "available": $0.available, "pending": $0.pending,
                            ]
                        }
                    ],
                    text: members.map {
                        "\(pad($0.id, 16)) \(pad($0.name, 20)) \(pad("\($0.available) pts", 10)) \($0.email)"
                    }.joined(separator: "\n"))
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "One member's account.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The member id.") var id: String

            func run() async throws {
                let client = try admin.client()
                let member = try await client.call {
                    try await $0.adminShowMember(path: .init(memberID: id)).ok.body.json
                }
                // The segment job's view of the member; none before its first run for them.
                var analysis: Components.Schemas.MemberAnalysis?
                do {
                    analysis = try await client.call {
                        try await $0.adminMemberAnalysis(path: .init(memberID: id)).ok.body.json
                    }
                } catch let error as LoyaltyError where error.code.rawValue == "not_found" {
                    analysis = nil
                }
                admin.output.emit(
                    [
                        "id": member.id, "status": member.status.rawValue, "available": member.available,
                        "pending": member.pending,
                        "owed": member.owed, "tier": member.tier, "lifetimeEarned": member.lifetimeEarned,
                        "cards": member.cards.map { ["number": $0.number, "status": $0.status.rawValue] },
                        "profile": member.profile.additionalProperties, "devices": member.devices.map(\.id),
                        "analysis": analysis.map(Self.analysisJSON) as Any,
                    ],
                    text: """
                        Member \(member.id) (\(member.status.rawValue)), tier \(member.tier)
                        Points: \(member.available) available, \(member.pending) pending, \(member.owed) owed, \(member.lifetimeEarned) earned in all
                        Cards: \(member.cards.map { "\($0.number) \($0.status.rawValue)" }.joined(separator: ", "))
                        Devices: \(member.devices.map(\.id).joined(separator: ", "))
                        \(analysis.map(Self.analysisText) ?? "Analysis: none yet (run `loyalty admin job segment`)")
                        """)
            }

            static func analysisJSON(_ analysis: Components.Schemas.MemberAnalysis) -> [String: Any] {
                [
                    "computedAt": analysis.computedAt.formatted(.iso8601), "stage": analysis.stage?.rawValue as Any,
                    "excluded": analysis.excluded as Any,
                    "figures": analysis.figures.map { figures in
                        [
                            "recencyDays": figures.recencyDays as Any, "frequency": figures.frequency,
                            "monetary": figures.monetary, "predictedValue": figures.predictedValue,
                            "pointsEarned": figures.pointsEarned, "pointsRedeemed": figures.pointsRedeemed,
                            "pointsExpired": figures.pointsExpired, "pointsHeld": figures.pointsHeld,
                            "daysSinceRedemption": figures.daysSinceRedemption as Any,
                            "satisfaction": figures.satisfaction as Any, "ageBand": figures.ageBand as Any,
                            "postcodeArea": figures.postcodeArea as Any,
                            "rfm": figures.rfm.map {
                                ["recency": $0.recency, "frequency": $0.frequency, "monetary": $0.monetary]
                            } as Any,
                        ] as [String: Any]
                    } as Any,
                    "segments": analysis.segments.map { ["name": $0.name, "because": $0.because] },
                ]
            }

            static func analysisText(_ analysis: Components.Schemas.MemberAnalysis) -> String {
                guard let figures = analysis.figures else {
                    return "Analysis: \(analysis.excluded ?? "no figures")"
                }
                let recency = figures.recencyDays.map { "\($0) days since the last purchase" } ?? "no purchase yet"
                var lines = [
                    "Stage: \(analysis.stage?.rawValue ?? "-")",
                    "Figures: \(recency); \(figures.frequency) purchases and \(figures.monetary) in 12 months; "
                        + "predicted \(figures.predictedValue) in the next 12",
                ]
                if let rfm = figures.rfm {
                    lines.append("RFM: \(rfm.recency)-\(rfm.frequency)-\(rfm.monetary)")
                }
                lines += analysis.segments.map { "Segment \($0.name), because \($0.because.joined(separator: ", "))" }
                return lines.joined(separator: "\n")
            }
        }
    }

    struct OfferAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "offer", abstract: "Create or withdraw offers.", subcommands: [Create.self, Withdraw.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Publish an offer to every member (or segments).")
            @OptionGroup var admin: AdminOptions
            @Option(help: "Title.") var title: String
            @Flag(help: "Usable once per member (the default).") var singleUse = false
            @Option(help: "Usable N times per member.") var uses: Int?
            @Option(help: "First day it may be used (default now).") var validFrom: String?
            @Option(help: "Last moment it may be used.") var validUntil: String?
            @Option(help: "Target a segment (repeatable).") var segment: [String] = []
            @Flag(help: "Members must activate it before use.") var activationRequired = false
            @Option(help: "An id (generated if absent).") var id: String?

            func validate() throws {
                if let uses, !(1...1000).contains(uses) { throw ValidationError("Please give --uses from 1 to 1000.") }
                if singleUse && uses != nil {
                    throw ValidationError("Please give either --single-use or --uses, not both.")
                }
            }

            func run() async throws {
                let body = Components.Schemas.OfferRequest(
                    id: id, title: title, segments: segment.isEmpty ? nil : segment,
                    validFrom: try validFrom.map { try parseDate($0, option: "--valid-from") },
                    validUntil: try validUntil.map { try parseDate($0, option: "--valid-until") },
                    activationRequired: activationRequired, usesPerMember: uses ?? 1)
                let created = try await admin.client().call {
                    try await $0.adminCreateOffer(body: .json(body)).created.body.json
                }
                admin.output.emit(createdJSON(created), text: "Offer \(created.id) created.")
            }
        }

        struct Withdraw: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Withdraw an offer from now on.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The offer id.") var id: String

            func run() async throws {
                _ = try await admin.client().call {
                    try await $0.adminWithdrawOffer(path: .init(offerID: id)).noContent
                }
                admin.output.emit(["id": id, "withdrawn": true], text: "Offer \(id) withdrawn.")
            }
        }
    }

    struct RewardAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reward", abstract: "Add rewards.", subcommands: [Create.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a reward to the catalogue.")
            @OptionGroup var admin: AdminOptions
            @Option(help: "Title.") var title: String
            @Option(help: "Price in points.") var cost: Int
            @Option(help: "How many there are (unlimited if absent).") var stock: Int?
            @Option(help: "An id (generated if absent).") var id: String?

            func validate() throws {
                guard cost >= 1 else { throw ValidationError("Please give --cost of at least 1 point.") }
                if let stock, stock < 0 { throw ValidationError("Please give --stock of 0 or more.") }
            }

            func run() async throws {
                let created = try await admin.client().call {
                    try await $0.adminCreateReward(body: .json(.init(id: id, title: title, cost: cost, stock: stock)))
                        .created.body.json
                }
                admin.output.emit(createdJSON(created), text: "Reward \(created.id) created.")
            }
        }
    }

    struct ReceiptAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "receipt", abstract: "Issue receipts.", subcommands: [Issue.self])

        struct Issue: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Issue a till receipt a member can claim in the app.")
            @OptionGroup var admin: AdminOptions
            @Option(help: "The amount paid, e.g. 42.50.") var amount: String
            @Option(help: "The code (generated if absent).") var code: String?
            @Option(help: "The shop.") var shop: String?

            func run() async throws {
                let created = try await admin.client().call {
                    try await $0.adminIssueReceipt(body: .json(.init(amount: amount, code: code, shop: shop))).created
                        .body.json
                }
                admin.output.emit(createdJSON(created), text: "Receipt \(created.code ?? created.id) issued.")
            }
        }
    }

    struct Purchase: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The till credits a purchase to a card or a member.")
        @OptionGroup var admin: AdminOptions
        @Option(help: "The card number scanned.") var card: String?
        @Option(help: "Or the member id.") var member: String?
        @Option(help: "The amount, e.g. 42.50.") var amount: String
        @Option(help: "The receipt printed for it.") var receipt: String?
        @Option(help: "The till's transaction id (generated if absent); a transaction is credited once.")
        var transaction: String?
        @OptionGroup var place: TillPlaceOptions

        func validate() throws {
            guard (card == nil) != (member == nil) else {
                throw ValidationError("Please give exactly one of --card or --member.")
            }
            try place.validate()
        }

        func run() async throws {
            let created = try await admin.client().call {
                try await $0.adminRecordPurchase(
                    body: .json(
                        .init(
                            amount: amount, cardNumber: card, memberID: member, receiptCode: receipt,
                            transactionID: transaction, shop: place.shop, categories: place.list))
                ).created.body.json
            }
            admin.output.emit(
                createdJSON(created),
                text: "Purchase \(created.id): \(created.points ?? 0) points to \(created.memberID ?? "?").")
        }
    }

    struct TillRedeem: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "redeem",
            abstract: "The till pays with points (never with points reserved for the member's devices).")
        @OptionGroup var admin: AdminOptions
        @Option(help: "The card number scanned.") var card: String?
        @Option(help: "Or the member id.") var member: String?
        @Option(help: "Points to spend.") var points: Int
        @Option(help: "The shop the till is in (shown in the member's timeline).") var shop: String?

        func validate() throws {
            guard (card == nil) != (member == nil) else {
                throw ValidationError("Please give exactly one of --card or --member.")
            }
            guard (1...1_000_000).contains(points) else {
                throw ValidationError("Please give --points from 1 to 1000000.")
            }
        }

        func run() async throws {
            let created = try await admin.client().call {
                try await $0.adminRedeemAtTill(
                    body: .json(.init(points: points, cardNumber: card, memberID: member, shop: shop))
                ).created.body.json
            }
            admin.output.emit(
                createdJSON(created),
                text: "Till redemption \(created.id): \(-(created.points ?? 0)) points from \(created.memberID ?? "?")."
            )
        }
    }

    struct Return: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The till records a return: the purchase's points are revoked pro rata.")
        @OptionGroup var admin: AdminOptions
        @Option(help: "The purchase's receipt code.") var receipt: String?
        @Option(help: "Or the purchase's transaction id.") var transaction: String?
        @Option(help: "The amount returned, e.g. 20.00.") var amount: String
        @OptionGroup var place: TillPlaceOptions

        func validate() throws {
            guard (receipt == nil) != (transaction == nil) else {
                throw ValidationError("Please give exactly one of --receipt or --transaction.")
            }
            try place.validate()
        }

        func run() async throws {
            let created = try await admin.client().call {
                try await $0.adminRecordReturn(
                    body: .json(
                        .init(
                            amount: amount, receiptCode: receipt, transactionID: transaction, shop: place.shop,
                            categories: place.list))
                ).created.body.json
            }
            admin.output.emit(
                createdJSON(created), text: "Return \(created.id): \(created.points ?? 0) points revoked.")
        }
    }

    struct CardAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "card", abstract: "Replace cards.", subcommands: [Replace.self])

        struct Replace: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Issue a new card; the old one stops earning.")
            @OptionGroup var admin: AdminOptions
            @Option(help: "The member id.") var member: String

            func run() async throws {
                let created = try await admin.client().call {
                    try await $0.adminReplaceCard(path: .init(memberID: member)).created.body.json
                }
                admin.output.emit(createdJSON(created), text: "New card \(created.number ?? created.id).")
            }
        }
    }

    struct SurveyAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "survey", abstract: "Publish surveys.", subcommands: [Create.self])

        struct Create: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Publish a survey that pays points once per member.",
                discussion:
                    "Questions are ID:TEXT:TYPE, TYPE one of rating, text or choice=A|B|C, e.g. --question 'q1:How was it?:rating'"
            )
            @OptionGroup var admin: AdminOptions
            @Option(help: "Title.") var title: String
            @Option(help: "Points paid.") var points: Int
            @Option(name: .customLong("question"), help: "ID:TEXT:TYPE, repeatable.") var questions: [String] = []

            func run() async throws {
                var parsed: [Components.Schemas.SurveyQuestion] = []
                for spec in questions {
                    let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
                    guard parts.count == 3 else {
                        throw ValidationError("Please write each --question as ID:TEXT:TYPE.")
                    }
                    if parts[2].hasPrefix("choice=") {
                        let options = parts[2].dropFirst(7).split(separator: "|").map(String.init)
                        parsed.append(.init(id: parts[0], text: parts[1], _type: .choice, options: options))
                    } else if let type = Components.Schemas.SurveyQuestion._TypePayload(rawValue: parts[2]) {
                        parsed.append(.init(id: parts[0], text: parts[1], _type: type))
                    } else {
                        throw ValidationError(
                            "Please use rating, text or choice=A|B as a question type, not '\(parts[2])'.")
                    }
                }
                guard !parsed.isEmpty else { throw ValidationError("Please give at least one --question.") }
                let body = Components.Schemas.SurveyRequest(title: title, points: points, questions: parsed)
                let created = try await admin.client().call {
                    try await $0.adminCreateSurvey(body: .json(body)).created.body.json
                }
                admin.output.emit(createdJSON(created), text: "Survey \(created.id) published.")
            }
        }
    }

    struct SegmentAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "segment", abstract: "Define, list, show or drop rule-based segments.",
            discussion: """
                A rule reads members' figures, stage, consents, tier and survey answers (docs/analysis.md), e.g.
                  loyalty admin segment define win-back --rule 'stage in (at-risk, lapsed) and monetary >= 200'
                The segment job (`loyalty admin job segment`, also on the server's schedule) places members in it.
                """,
            subcommands: [Define.self, List.self, Show.self, Drop.self])

        struct Define: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Define a segment by a rule.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The segment's name (letters, digits, '-', '_', '.', ':'); offers target it by name.")
            var name: String
            @Option(help: "The rule, in the segment language (docs/analysis.md).") var rule: String

            func run() async throws {
                let segment = try await admin.client().call {
                    try await $0.adminDefineSegment(body: .json(.init(name: name, rule: rule))).created.body.json
                }
                admin.output.emit(
                    ["name": segment.name, "rule": segment.rule],
                    text: "Segment \(segment.name) defined; the segment job's next run places members in it.")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "The segments, their sizes and changes.")
            @OptionGroup var admin: AdminOptions

            func run() async throws {
                let segments = try await admin.client().call {
                    try await $0.adminListSegments().ok.body.json.segments
                }
                admin.output.emit(
                    [
                        "segments": segments.map {
                            [
                                "name": $0.name, "rule": $0.rule, "size": $0.size as Any,
                                "previousSize": $0.previousSize as Any,
                            ]
                        }
                    ],
                    text: segments.isEmpty
                        ? "No segments yet: define one with `loyalty admin segment define`."
                        : segments.map(Self.line).joined(separator: "\n"))
            }

            /// `name  12 members (+3)  rule`.
            static func line(_ segment: Components.Schemas.Segment) -> String {
                var size = segment.size.map { "\($0) members" } ?? "not run yet"
                if let now = segment.size, let before = segment.previousSize {
                    size += now >= before ? " (+\(now - before))" : " (\(now - before))"
                }
                return "\(pad(segment.name, 20)) \(pad(size, 24)) \(segment.rule)"
            }
        }

        struct Show: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "One segment, its sizes over time, its members.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The segment's name.") var name: String
            @Flag(help: "List its members too.") var members = false
            @Option(help: "At most this many members (1 to 10000).") var limit = 1_000

            func run() async throws {
                let detail = try await admin.client().call {
                    try await $0.adminShowSegment(
                        path: .init(name: name), query: .init(members: members, limit: limit)
                    ).ok.body.json
                }
                let sizes = detail.sizes.suffix(10).map { "\($0.at.formatted(.iso8601)) \($0.size)" }
                admin.output.emit(
                    [
                        "name": detail.segment.name, "rule": detail.segment.rule, "size": detail.segment.size as Any,
                        "sizes": detail.sizes.map { ["at": $0.at.formatted(.iso8601), "size": $0.size] },
                        "members": detail.members as Any,
                    ],
                    text: (["Segment \(detail.segment.name): \(detail.segment.rule)"] + sizes
                        + (detail.members.map { ["Members:"] + $0 } ?? [])).joined(separator: "\n"))
            }
        }

        struct Drop: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Drop a segment.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The segment's name.") var name: String

            func run() async throws {
                try await admin.client().call { _ = try await $0.adminDropSegment(path: .init(name: name)).noContent }
                admin.output.emit(
                    ["dropped": name], text: "Segment \(name) dropped; the next run takes it off its members.")
            }
        }
    }

    struct JobCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "job", abstract: "Run a job now: unlock, expire or segment.",
            discussion: """
                unlock makes pending points spendable, expire expires what is due, segment recomputes members' \
                figures, stages and rule-based segments (docs/analysis.md). Each also runs on the server's schedule.
                """)
        @OptionGroup var admin: AdminOptions
        @Argument(help: "unlock, expire or segment") var job: String

        func validate() throws {
            guard Operations.AdminRunJob.Input.Path.JobPayload(rawValue: job) != nil else {
                throw ValidationError("Please name the job: unlock, expire or segment.")
            }
        }

        func run() async throws {
            let result = try await admin.client().call {
                try await $0.adminRunJob(path: .init(job: .init(rawValue: job)!)).ok.body.json
            }
            let what =
                job == "segment"
                ? "\(result.members) members changed, \(result.movements) entries into or exits from segments."
                : "\(result.movements) movements for \(result.members) members."
            admin.output.emit(
                ["job": result.job, "members": result.members, "movements": result.movements],
                text: "Job \(result.job): \(what)")
        }
    }

    struct ClockAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clock", abstract: "Move the server's test clock (needs --test-clock).",
            subcommands: [Set.self, Advance.self])

        struct Set: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Set the server's time, e.g. 2027-01-01.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "A date or date-time.") var date: String

            func run() async throws {
                let when = try parseDate(date, option: "the date")
                let state = try await admin.client().call {
                    try await $0.adminSetClock(body: .json(.init(set: when))).ok.body.json
                }
                admin.output.emit(
                    ["now": Timestamp(state.now).description], text: "Server time: \(Timestamp(state.now)).")
            }
        }

        struct Advance: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Move the server's time forward, e.g. 15d.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "A duration: 15d, 36h, 90m, 30s.") var duration: String

            func validate() throws {
                guard let span = TimeSpan(parsing: duration), span > .zero else {
                    throw ValidationError("Please write the duration like 15d, 36h or 90m.")
                }
            }

            func run() async throws {
                let state = try await admin.client().call {
                    try await $0.adminSetClock(body: .json(.init(advance: duration))).ok.body.json
                }
                admin.output.emit(
                    ["now": Timestamp(state.now).description], text: "Server time: \(Timestamp(state.now)).")
            }
        }
    }

    struct DeviceAdmin: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "device", abstract: "Revoke devices.", subcommands: [Revoke.self])

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke any device.")
            @OptionGroup var admin: AdminOptions
            @Argument(help: "The device id.") var id: String

            func run() async throws {
                _ = try await admin.client().call {
                    try await $0.adminRevokeDevice(path: .init(deviceID: id)).noContent
                }
                admin.output.emit(["revoked": id], text: "Device \(id) revoked.")
            }
        }
    }
}

/// Where a till transaction happens: its shop and the basket's categories.
struct TillPlaceOptions: ParsableArguments {
    @Option(help: "The shop the till is in (shown in the member's timeline).") var shop: String?
    @Option(help: "The basket's categories, comma-separated, e.g. food,drugstore (lower-case letters, digits, '-').")
    var category: String?

    /// The categories as a list; nil without --category.
    var list: [String]? { category.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } }

    func validate() throws {
        for category in list ?? [] where category.isEmpty {
            throw ValidationError("--category has an empty category: give e.g. food,drugstore.")
        }
    }
}
