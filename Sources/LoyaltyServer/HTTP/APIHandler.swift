internal import Foundation
internal import LoyaltyAPI
internal import LoyaltyCore
internal import OpenAPIRuntime

/// The generated server protocol, implemented by translating to and from ``SyncService``. Failures are thrown
/// as ``APIFailure`` and answered by ``FailureMiddleware``.
struct APIHandler: APIProtocol {
    let service: SyncService
    let metrics: ServerMetrics

    var device: DeviceRecord {
        get throws {
            guard let device = RequestContext.device else { throw APIFailure(.unauthorized, "no device token") }
            return device
        }
    }

    // MARK: Operations

    func health(_ input: Operations.Health.Input) async throws -> Operations.Health.Output {
        do {
            try await service.storage.ping()
        } catch {
            throw APIFailure(.unavailable, "the store does not answer")
        }
        return .ok(.init(body: .json(.init(status: "ok", version: loyaltyProtocolVersion))))
    }

    func live(_ input: Operations.Live.Input) async throws -> Operations.Live.Output {
        .ok(.init(body: .plainText(HTTPBody("ok"))))
    }

    func metrics(_ input: Operations.Metrics.Input) async throws -> Operations.Metrics.Output {
        metrics.record(service.storage.commitStatistics)
        return .ok(.init(body: .plainText(HTTPBody(metrics.render()))))
    }

    // MARK: Auth and devices

    func enroll(_ input: Operations.Enroll.Input) async throws -> Operations.Enroll.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let registration = Registration(
            name: body.name, email: body.email, phone: body.phone, birthdate: body.birthdate, address: body.address)
        let session = try await service.enroll(registration, password: body.password, deviceName: body.deviceName)
        return .created(.init(body: .json(session.wire)))
    }

    func login(_ input: Operations.Login.Input) async throws -> Operations.Login.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let session = try await service.login(email: body.email, password: body.password, deviceName: body.deviceName)
        return .ok(.init(body: .json(session.wire)))
    }

    func refresh(_ input: Operations.Refresh.Input) async throws -> Operations.Refresh.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        return .ok(.init(body: .json(try await service.refresh(token: body.refreshToken).wire)))
    }

    func changePassword(_ input: Operations.ChangePassword.Input) async throws -> Operations.ChangePassword.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        try await service.changePassword(from: try device, current: body.currentPassword, new: body.newPassword)
        return .noContent(.init())
    }

    func signOutEverywhere(
        _ input: Operations.SignOutEverywhere.Input
    ) async throws -> Operations.SignOutEverywhere.Output {
        try await service.signOut(member: try device.memberID, except: nil, reason: .signedOutEverywhere)
        return .noContent(.init())
    }

    func adminSetSignIn(_ input: Operations.AdminSetSignIn.Input) async throws -> Operations.AdminSetSignIn.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        try await service.setSignInBlocked(member: MemberID(input.path.memberID), blocked: body.blocked)
        return .noContent(.init())
    }

    func listDevices(_ input: Operations.ListDevices.Input) async throws -> Operations.ListDevices.Output {
        let caller = try device
        let devices = try await service.devices(of: caller.memberID)
        return .ok(.init(body: .json(.init(devices: devices.map { $0.wire(current: caller.id) }))))
    }

    func revokeDevice(_ input: Operations.RevokeDevice.Input) async throws -> Operations.RevokeDevice.Output {
        try await service.revoke(DeviceID(input.path.deviceID), by: try device.memberID)
        return .noContent(.init())
    }

    // MARK: Sync

    /// Never reached over HTTP: ``SyncResponder`` reads pushes and writes their answers by hand.
    func push(_ input: Operations.Push.Input) async throws -> Operations.Push.Output {
        throw APIFailure(.internalError, "push is answered by SyncResponder, which is not installed")
    }

    /// Never reached over HTTP: ``SyncResponder`` answers pulls, writing the stored entities' bytes into the answer
    /// (the generated types would decode and re-encode every entity).
    func pull(_ input: Operations.Pull.Input) async throws -> Operations.Pull.Output {
        throw APIFailure(.internalError, "pull is answered by SyncResponder, which is not installed")
    }

    // MARK: Admin: members

    func adminListMembers(_ input: Operations.AdminListMembers.Input) async throws -> Operations.AdminListMembers.Output
    {
        let members = try await service.members(
            after: input.query.after.map { MemberID($0) }, limit: input.query.limit ?? 100)
        return .ok(.init(body: .json(.init(members: members.map(\.summary)))))
    }

    func adminShowMember(_ input: Operations.AdminShowMember.Input) async throws -> Operations.AdminShowMember.Output {
        let overview = try await service.overview(of: MemberID(input.path.memberID))
        return .ok(.init(body: .json(overview.detail(now: service.now))))
    }

    func adminReplaceCard(_ input: Operations.AdminReplaceCard.Input) async throws -> Operations.AdminReplaceCard.Output
    {
        .created(.init(body: .json(try await service.replaceCard(member: MemberID(input.path.memberID)).wire)))
    }

    func adminAdjustPoints(
        _ input: Operations.AdminAdjustPoints.Input
    ) async throws -> Operations.AdminAdjustPoints.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let receipt = try await service.adjustPoints(
            member: MemberID(input.path.memberID), points: body.points, reason: body.reason)
        return .created(.init(body: .json(receipt.wire)))
    }

    func adminSetSegments(_ input: Operations.AdminSetSegments.Input) async throws -> Operations.AdminSetSegments.Output
    {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        try await service.setSegments(member: MemberID(input.path.memberID), segments: body.segments)
        return .noContent(.init())
    }

    func adminRevokeDevice(
        _ input: Operations.AdminRevokeDevice.Input
    ) async throws -> Operations.AdminRevokeDevice.Output {
        try await service.revokeAnyDevice(DeviceID(input.path.deviceID))
        return .noContent(.init())
    }

    // MARK: Admin: catalogue

    func adminCreateOffer(_ input: Operations.AdminCreateOffer.Input) async throws -> Operations.AdminCreateOffer.Output
    {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let offer = Offer(
            id: OfferID(body.id ?? service.makeRandomID("O-")), title: body.title, details: body.details ?? "",
            segments: Set(body.segments ?? []), validFrom: body.validFrom.map(Timestamp.init(wire:)) ?? service.now,
            validUntil: body.validUntil.map(Timestamp.init(wire:)),
            activationRequired: body.activationRequired ?? false,
            usesPerMember: body.usesPerMember ?? 1)
        return .created(.init(body: .json(try await service.createOffer(offer).wire)))
    }

    func adminWithdrawOffer(
        _ input: Operations.AdminWithdrawOffer.Input
    ) async throws -> Operations.AdminWithdrawOffer.Output {
        try await service.withdrawOffer(OfferID(input.path.offerID))
        return .noContent(.init())
    }

    func adminCreateReward(
        _ input: Operations.AdminCreateReward.Input
    ) async throws -> Operations.AdminCreateReward.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let reward = Reward(
            id: RewardID(body.id ?? service.makeRandomID("RW-")), title: body.title, cost: body.cost, stock: body.stock)
        return .created(.init(body: .json(try await service.createReward(reward).wire)))
    }

    func adminCreateSurvey(
        _ input: Operations.AdminCreateSurvey.Input
    ) async throws -> Operations.AdminCreateSurvey.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        var questions: [Survey.Question] = []
        for question in body.questions {
            if let maximum = question.maximum, !(2...10).contains(maximum) {
                throw APIFailure(.unprocessable, "question '\(question.id)': maximum must be 2 to 10, not \(maximum)")
            }
            let kind: Survey.Question.Kind
            switch question._type {
            case .choice:
                guard let options = question.options, !options.isEmpty else {
                    throw APIFailure(.unprocessable, "question '\(question.id)': a choice needs options")
                }
                kind = .choice(options)
            case .rating: kind = .rating(maximum: question.maximum ?? 5)
            case .text: kind = .text
            }
            questions.append(
                Survey.Question(id: question.id, text: question.text, kind: kind, isRequired: question.required ?? true)
            )
        }
        let survey = Survey(
            id: SurveyID(body.id ?? service.makeRandomID("S-")), title: body.title, questions: questions,
            points: body.points,
            closesAt: body.closesAt.map(Timestamp.init(wire:)))
        return .created(.init(body: .json(try await service.createSurvey(survey).wire)))
    }

    // MARK: Admin: till

    func adminIssueReceipt(
        _ input: Operations.AdminIssueReceipt.Input
    ) async throws -> Operations.AdminIssueReceipt.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let receipt = try await service.issueReceipt(
            amount: body.amount, code: body.code, shop: body.shop,
            purchasedAt: body.purchasedAt.map(Timestamp.init(wire:)))
        return .created(.init(body: .json(receipt.wire)))
    }

    func adminRecordPurchase(
        _ input: Operations.AdminRecordPurchase.Input
    ) async throws -> Operations.AdminRecordPurchase.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let receipt = try await service.recordPurchase(
            amount: body.amount, card: body.cardNumber, member: body.memberID, receiptCode: body.receiptCode,
            transaction: body.transactionID, shop: body.shop, categories: body.categories ?? [])
        return .created(.init(body: .json(receipt.wire)))
    }

    func adminRedeemAtTill(
        _ input: Operations.AdminRedeemAtTill.Input
    ) async throws -> Operations.AdminRedeemAtTill.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let receipt = try await service.redeemAtTill(
            points: body.points, card: body.cardNumber, member: body.memberID, transaction: body.transactionID,
            shop: body.shop)
        return .created(.init(body: .json(receipt.wire)))
    }

    func adminRecordReturn(
        _ input: Operations.AdminRecordReturn.Input
    ) async throws -> Operations.AdminRecordReturn.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        let receipt = try await service.recordReturn(
            amount: body.amount, receiptCode: body.receiptCode, transaction: body.transactionID,
            returnID: body.returnID,
            shop: body.shop, categories: body.categories ?? [])
        return .created(.init(body: .json(receipt.wire)))
    }

    // MARK: Admin: jobs and clock

    func adminRunJob(_ input: Operations.AdminRunJob.Input) async throws -> Operations.AdminRunJob.Output {
        let job: Job =
            switch input.path.job {
            case .unlock: .unlock
            case .expire: .expire
            case .segment: .segment
            }
        let report = try await service.run(job)
        return .ok(.init(body: .json(.init(job: report.job, members: report.members, movements: report.movements))))
    }

    func adminGetClock(_ input: Operations.AdminGetClock.Input) async throws -> Operations.AdminGetClock.Output {
        .ok(.init(body: .json(.init(now: service.now.wire, testClock: service.hasTestClock))))
    }

    func adminSetClock(_ input: Operations.AdminSetClock.Input) async throws -> Operations.AdminSetClock.Output {
        guard case .json(let body) = input.body else { throw APIFailure(.badRequest, "send JSON") }
        var span: TimeSpan?
        if let text = body.advance {
            guard let parsed = TimeSpan(parsing: text) else {
                throw APIFailure(
                    .unprocessable, "advance: \(text.quoted) is not a duration; write e.g. 15d, 36h, 90m or 30s")
            }
            span = parsed
        }
        let now = try service.setClock(to: body.set.map(Timestamp.init(wire:)), advanceBy: span)
        return .ok(.init(body: .json(.init(now: now.wire, testClock: true))))
    }
}

// MARK: - Server types on the wire

extension Session {
    var wire: Components.Schemas.Session {
        .init(
            memberID: memberID.rawValue, deviceID: deviceID.rawValue, cardNumber: cardNumber.digits,
            accessToken: accessToken,
            accessTokenExpiresAt: accessTokenExpiresAt.wire, refreshToken: refreshToken, serverTime: serverTime.wire)
    }
}

extension DeviceRecord {
    func wire(current: DeviceID) -> Components.Schemas.Device {
        .init(
            id: id.rawValue, name: name, createdAt: createdAt.wire, revokedAt: revokedAt?.wire,
            lastSeenAt: lastSeenAt?.wire,
            current: id == current)
    }
}

extension OperatorReceipt {
    var wire: Components.Schemas.Created {
        .init(id: id, number: number, code: code, points: points, memberID: memberID?.rawValue)
    }
}

extension MemberOverview {
    var summary: Components.Schemas.MemberSummary {
        .init(
            id: state.member.id.rawValue, name: state.profileValue(.name) ?? "", email: account.email,
            status: .init(rawValue: state.member.status.rawValue)!, cardNumber: state.activeCard?.number.digits,
            available: state.ledger.available, pending: state.ledger.pendingPoints)
    }

    func detail(now: Timestamp) -> Components.Schemas.MemberDetail {
        var profile: [String: String] = [:]
        for (field, value) in state.profile { if let text = value.value { profile[field.rawValue] = text } }
        return .init(
            id: state.member.id.rawValue, status: .init(rawValue: state.member.status.rawValue)!,
            segments: state.member.segments.sorted(),
            cards: state.cards.values.sorted { $0.issuedAt < $1.issuedAt }.map {
                .init(
                    number: $0.number.digits, status: .init(rawValue: $0.status.rawValue)!,
                    replacedBy: $0.replacedBy?.digits)
            },
            available: state.ledger.available, pending: state.ledger.pendingPoints, owed: state.ledger.owed,
            tier: state.currentTier.id, lifetimeEarned: state.ledger.lifetimeEarned,
            profile: .init(additionalProperties: profile), devices: devices.map { $0.wire(current: DeviceID("")) })
    }
}
