internal import Foundation
internal import LoyaltyCore
internal import LoyaltyServer
internal import LoyaltyStore
internal import LoyaltySync

// The steps a run takes at random: member actions, syncs, the till, the operator, the clock, faults.
extension World {

    func randomStep() async throws {
        switch dice.weighted([35, 30, 12, 6, 10, 7]) {
        case 0: try memberAction()
        case 1: try await sync(dice.pick(Array(devices.indices)))
        case 2: try await till()
        case 3: try await operate()
        case 4: advanceClock()
        default: try await fault()
        }
    }

    /// The member does something on one of their devices, offline or not.
    func memberAction() throws {
        let device = devices[dice.pick(Array(devices.indices))]
        guard let store = device.store, let view = store.view else { return }
        let mutation: Mutation
        switch dice.weighted([25, 15, 15, 10, 5, 15, 15]) {
        case 0:
            let rewards = view.rewards.keys.sorted()
            guard !rewards.isEmpty else { return }
            mutation = .redeemReward(dice.pick(rewards))
        case 1:
            // A receipt: one nobody claimed, one already claimed (by anyone), or a code that does not exist.
            let code: String
            switch dice.int(0...3) {
            case 0, 1: code = openReceipts.isEmpty ? "R-NONE-\(step)" : dice.pick(openReceipts)
            case 2: code = claimedReceipts.isEmpty ? "R-NONE-\(step)" : dice.pick(claimedReceipts)
            default: code = "R-NONE-\(step)"
            }
            mutation = .claimReceipt(code: code)
        case 2: mutation = .activateOffer(dice.pick(offers))
        case 3: mutation = .redeemOffer(dice.pick(offers))
        case 4:
            mutation = .answerSurvey(
                "store-visit", answers: ["rating": "\(dice.int(1...5))", "store": dice.pick(["Hamburg", "München"])])
        case 5:
            let field = dice.pick([ProfileField.phone, .address, .name])
            let value =
                switch field {
                case .phone: "+49 30 \(dice.int(1_000_000...9_999_999))"
                case .address: "Hauptstraße \(dice.int(1...99)), Berlin"
                default: dice.pick(["Anna Schmidt", "Anna Weber", "Anna Schmidt-Weber"])
                }
            mutation = .setProfileField(field, value: value, basedOn: nil)
        default:
            mutation = .setConsent(
                dice.pick([ConsentKind.marketingEmail, .marketingSMS, .profiling]), granted: dice.chance(0.5))
        }
        let deviceTime = now.adding(device.skew)
        do {
            let (envelope, outcome) = try store.record(mutation, at: deviceTime)
            device.recorded.append(envelope.sequence)
            if outcome.isGuaranteed, let hold = view.allowances[envelope.deviceID]?.holdUntil {
                device.guaranteed[envelope.sequence] = (
                    hold: hold, knownAt: device.lastSyncedAt ?? Timestamp(millisecondsSince1970: 0)
                )
                count("guaranteed redemptions")
            }
            count("mutations recorded")
            trace(
                "\(device.name) \(mutation.kind) #\(envelope.sequence)\(outcome.isGuaranteed ? " guaranteed" : "")"
            )
        } catch let error as LoyaltyError {
            count("refused on the device")
            trace(
                "\(device.name) \(mutation.kind) refused on the device: \((error.cause as? MutationRejection)?.code.rawValue ?? error.code.rawValue)"
            )
        }
    }

    /// One device syncs; a crash during it discards the device's memory (its file stays).
    func sync(_ index: Int) async throws {
        let device = devices[index]
        if device.store == nil { try device.open(clock: clock) }
        if let until = device.partitionedUntil, now >= until {
            device.partitionedUntil = nil
            device.network.isOnline = true
            trace("\(device.name) partition healed")
        }
        let report = await device.engine!.sync()
        if report.outcome == .synced { device.lastSyncedAt = now }
        count("syncs")
        trace(
            "\(device.name) sync: \(report.outcome) pushed \(report.pushed) applied \(report.applied) "
                + "rejected \(report.rejected) pulled \(report.pulled)")
        try checkGuarantees(device)
        if device.network.takeCrash() {
            device.close()
            count("device crashes")
            trace("\(device.name) crashed; it will reopen from its file")
        }
    }

    /// The till credits a purchase (printing a receipt), records a return, or takes points.
    func till() async throws {
        let member = dice.pick(Array(members.indices))
        guard let id = members[member].id else { return }
        switch dice.weighted([60, 20, 20]) {
        case 0:
            // One purchase in eight is under a euro: it earns nothing, and can still be returned.
            let cents =
                dice.chance(0.125) ? Int64(dice.int(1...99)) : Int64(dice.int(5...400)) * 100 + Int64(dice.int(0...99))
            let code = "R-\(seed % 10_000)-\(step)"
            do {
                let credited = try await service.recordPurchase(
                    amount: Money(minorUnits: cents).description, card: nil, member: id.rawValue, receiptCode: nil,
                    transaction: "T-\(step)")
                purchases.append((member, "T-\(step)", cents, 0, now))
                trace("till: purchase for m\(member), \(credited.points ?? 0) points")
                // A printed receipt for another purchase the member may claim in the app.
                _ = try await service.issueReceipt(
                    amount: Money(minorUnits: cents / 2).description, code: code, shop: "sim", purchasedAt: now)
                openReceipts.append(code)
                count("purchases")
            } catch let failure as APIFailure {
                trace("till: purchase for m\(member) refused: \(failure.kind.code)")
            }
        case 1:
            let candidates = purchases.indices.filter {
                purchases[$0].member == member && purchases[$0].cents > purchases[$0].returned
            }
            // Half the time the member's oldest purchase with something left: often one whose lot has expired.
            guard let index = candidates.isEmpty ? nil : dice.chance(0.5) ? candidates[0] : dice.pick(candidates)
            else { return }
            let left = purchases[index].cents - purchases[index].returned
            guard left > 0 else { return }
            let amount = max(1, left / Int64(dice.int(1...3)))
            do {
                let receipt = try await service.recordReturn(
                    amount: Money(minorUnits: amount).description, receiptCode: nil,
                    transaction: purchases[index].transaction, returnID: nil)
                purchases[index].returned += amount
                members[member].lastReturnAt = now
                trace("till: return for m\(member), \(receipt.points ?? 0) points")
                count("returns")
                if purchases[index].at.adding(.days(61)) < now { count("returns of purchases over two months old") }
            } catch let failure as APIFailure {
                trace("till: return refused: \(failure.kind.code)")
            }
        default:
            do {
                let receipt = try await service.redeemAtTill(
                    points: dice.int(50...600), card: nil, member: id.rawValue, transaction: nil)
                trace("till: m\(member) pays \(-(receipt.points ?? 0)) points")
                count("till redemptions")
            } catch let failure as APIFailure {
                trace("till: redemption refused: \(failure.kind.code)")
            }
        }
    }

    /// The operator: offers, cards, jobs, compaction.
    func operate() async throws {
        switch dice.weighted([20, 15, 10, 25, 25, 5]) {
        case 0:
            let id = OfferID("sim-\(step)")
            _ = try await service.createOffer(
                Offer(
                    id: id, title: "Offer \(step)", validFrom: now,
                    validUntil: now.adding(.days(Int64(dice.int(1...20)))),
                    activationRequired: dice.chance(0.5), usesPerMember: dice.int(1...2)))
            offers.append(id)
            trace("operator: offer \(id) published")
        case 1:
            let id = dice.pick(offers)
            try? await service.withdrawOffer(id)
            trace("operator: offer \(id) withdrawn")
        case 2:
            let member = dice.pick(Array(members.indices))
            guard let id = members[member].id else { return }
            _ = try await service.replaceCard(member: id)
            trace("operator: card of m\(member) replaced")
        case 3:
            let report = try await service.run(.unlock)
            trace("job unlock: \(report.movements) movements")
        case 4:
            let report = try await service.run(.expire)
            trace("job expire: \(report.movements) movements")
        default:
            try await service.compactFeed()
            trace("operator: feed compacted")
        }
    }

    func advanceClock() {
        let span: TimeSpan = dice.chance(0.75) ? .hours(Int64(dice.int(1...48))) : .days(Int64(dice.int(2...12)))
        try? clock.advance(by: span)
        trace("clock +\(span) → \(now)")
    }

    func fault() async throws {
        let device = devices[dice.pick(Array(devices.indices))]
        switch dice.weighted([20, 25, 10, 20, 25]) {
        case 0:
            // Mostly hours; sometimes days; now and then longer than the feed keeps changes (a reset follows).
            let span: TimeSpan =
                switch dice.weighted([70, 20, 10]) {
                case 0: .hours(Int64(dice.int(2...48)))
                case 1: .days(Int64(dice.int(2...6)))
                default: .days(Int64(dice.int(31...45)))
                }
            device.partitionedUntil = now.adding(span)
            device.network.isOnline = false
            trace("\(device.name) partitioned for \(span)")
            count("partitions")
        case 1:
            device.close()
            trace("\(device.name) crashed (between steps); it will reopen from its file")
            count("device crashes")
        case 2:
            slot.replace(with: try await startServer())
            trace("server restarted from its file")
            count("server restarts")
        case 3:
            device.skew = .minutes(Int64(dice.int(-26 * 60...26 * 60)))
            trace("\(device.name) clock skew \(device.skew)")
        default:
            await device.network.deliverHeldBack()
            trace("\(device.name): held-back pushes delivered late")
        }
    }
}
