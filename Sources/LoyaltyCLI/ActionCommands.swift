internal import ArgumentParser
internal import Foundation
internal import LoyaltyCore
internal import LoyaltyStore
internal import LoyaltySync

// Actions

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
    } catch let error as LoyaltyError {
        throw LoyaltyError(
            LoyaltyError.Code(rawValue: (error.cause as? MutationRejection)?.code.rawValue ?? error.code.rawValue),
            error.message, cause: error.cause)
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
