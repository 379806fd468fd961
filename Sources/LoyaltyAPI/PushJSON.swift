public import Foundation
public import LoyaltyCore

/// The push request and its answer (`PushRequest` and `PushResponse` in docs/openapi.yaml), read and written by
/// hand on the server.
///
/// Foundation's decoder behind the generated types was the server's largest cost under ingest (docs/benchmarks.md).
/// The wire form is the contract's; the generated types stay the reference (`PushJSONTests` hold the two together).
public enum PushJSON {
    /// Reads a push: quickly in the contract's plain shape (``decodeQuickly(_:)``), otherwise through the generated
    /// types with the contract's dates, whose errors name what is wrong.
    public static func decode(_ data: Data) throws -> PushRequest {
        if let request = decodeQuickly(data) { return request }
        return try PushRequest(wire: wireDecoder.decode(Components.Schemas.PushRequest.self, from: data))
    }

    /// A decoder for the generated types with the contract's dates, as the generated server's converter reads them.
    public static var wireDecoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try RFC3339DateTranscoder().decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }

    /// An encoder for the generated types with the contract's dates, as the generated client's converter writes them.
    public static var wireEncoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339DateTranscoder().encode(date))
        }
        return encoder
    }

    /// Reads a push in the shape the contract gives, without Foundation's decoder, or nil at anything it does not
    /// expect (an escaped string, a null, an unknown field or kind, a malformed value, a sequence below 1): the
    /// caller then reads it through the generated types, which accept what they should and name what is wrong. It
    /// never accepts what they would refuse, nor reads a value differently.
    public static func decodeQuickly(_ data: Data) -> PushRequest? {
        data.withUnsafeBytes { buffer -> PushRequest? in
            var reader = ByteReader(bytes: buffer)
            var deviceID: String?
            var envelopes: [PushedEnvelope] = []
            var sawMutations = false
            let read = reader.object { key, reader in
                switch key {
                case "deviceID": return reader.string(into: &deviceID)
                case "mutations":
                    sawMutations = true
                    return reader.array { reader in
                        guard let envelope = reader.pushedEnvelope() else { return false }
                        envelopes.append(envelope)
                        return true
                    }
                default: return false
                }
            }
            guard read, reader.atEnd, let deviceID, sawMutations else { return nil }
            let device = DeviceID(deviceID)
            let transcoder = RFC3339DateTranscoder()
            var mutations: [MutationEnvelope] = []
            mutations.reserveCapacity(envelopes.count)
            for envelope in envelopes {
                guard envelope.sequence >= 1, let stamp = try? HLCTimestamp(wire: envelope.stamp, field: "stamp"),
                    let date = try? transcoder.decode(envelope.deviceTime)
                else { return nil }
                mutations.append(
                    MutationEnvelope(
                        deviceID: device, sequence: UInt64(envelope.sequence), stamp: stamp,
                        deviceTime: Timestamp(wire: date), mutation: envelope.mutation))
            }
            return PushRequest(deviceID: device, mutations: mutations)
        }
    }

    /// The answer's JSON, as the generated types would write it (fields in the contract's order).
    public static func encode(_ response: PushResponse) throws -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(160 + response.results.count * 48)
        out.append(contentsOf: #"{"results":["#.utf8)
        for (index, result) in response.results.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: #"{"sequence":"#.utf8)
            StreamingJSON.appendInteger(result.sequence, to: &out)
            switch result.status {
            case .applied:
                out.append(contentsOf: #","status":"applied""#.utf8)
            case .adjusted(let message):
                out.append(contentsOf: #","status":"adjusted","message":"#.utf8)
                StreamingJSON.appendString(message, to: &out)
            case .rejected(let rejection):
                out.append(contentsOf: #","status":"rejected","code":"#.utf8)
                StreamingJSON.appendString(rejection.code.rawValue, to: &out)
                out.append(contentsOf: #","message":"#.utf8)
                StreamingJSON.appendString(rejection.message, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #"],"lastProcessedSequence":"#.utf8)
        StreamingJSON.appendInteger(response.lastProcessedSequence, to: &out)
        out.append(contentsOf: #","serverTime":"#.utf8)
        StreamingJSON.appendString(try RFC3339DateTranscoder().encode(response.serverTime.wire), to: &out)
        out.append(contentsOf: #","serverStamp":"#.utf8)
        StreamingJSON.appendString(response.serverStamp.wire, to: &out)
        out.append(UInt8(ascii: "}"))
        return Data(out)
    }
}

/// An envelope as pushed, before its stamp and time are parsed.
struct PushedEnvelope {
    var sequence: Int64
    var stamp: String
    var deviceTime: String
    var mutation: LoyaltyCore.Mutation
}

extension ByteReader {
    /// One envelope of a push: exactly its four fields.
    mutating func pushedEnvelope() -> PushedEnvelope? {
        var sequence: Int64?
        var stamp: String?
        var deviceTime: String?
        var mutation: LoyaltyCore.Mutation?
        let read = object { key, reader in
            switch key {
            case "sequence": return reader.integer(into: &sequence)
            case "stamp": return reader.string(into: &stamp)
            case "deviceTime": return reader.string(into: &deviceTime)
            case "mutation":
                mutation = reader.pushedMutation()
                return mutation != nil
            default: return false
            }
        }
        guard read, let sequence, let stamp, let deviceTime, let mutation else { return nil }
        return PushedEnvelope(sequence: sequence, stamp: stamp, deviceTime: deviceTime, mutation: mutation)
    }

    /// A mutation: its `kind` and exactly the fields of that kind (an optional one may be absent, not null).
    mutating func pushedMutation() -> LoyaltyCore.Mutation? {
        var kind: String?
        var identifier: String?
        var identifierKey = ""
        var answers: [String: String]?
        var field: ProfileField?
        var value: String?
        var basedOn: String?
        var consent: ConsentKind?
        var granted: Bool?
        var fields = 0
        let read = object { key, reader in
            fields += 1
            switch key {
            case "kind": return reader.string(into: &kind)
            case "offerID", "rewardID", "code", "surveyID":
                // At most one of them belongs to any kind: a second one is refused below by the count of fields.
                identifierKey = String(decoding: key.bytes, as: UTF8.self)
                return reader.string(into: &identifier)
            case "answers":
                var read: [String: String] = [:]
                let readAll = reader.object { key, reader in
                    guard let name = String(validating: key.bytes, as: UTF8.self), let text = reader.string() else {
                        return false
                    }
                    read[name] = text
                    return true
                }
                answers = read
                return readAll
            case "field": return reader.enumeration(into: &field)
            case "value": return reader.string(into: &value)
            case "basedOn": return reader.string(into: &basedOn)
            case "consent": return reader.enumeration(into: &consent)
            case "granted": return reader.boolean(into: &granted)
            default: return false
            }
        }
        guard read, let kind else { return nil }
        switch kind {
        case "activateOffer", "redeemOffer", "redeemReward", "claimReceipt":
            let key =
                ["activateOffer": "offerID", "redeemOffer": "offerID", "redeemReward": "rewardID"][kind] ?? "code"
            guard fields == 2, identifierKey == key, let identifier else { return nil }
            switch kind {
            case "activateOffer": return .activateOffer(OfferID(identifier))
            case "redeemOffer": return .redeemOffer(OfferID(identifier))
            case "redeemReward": return .redeemReward(RewardID(identifier))
            default: return .claimReceipt(code: identifier)
            }
        case "answerSurvey":
            guard fields == 3, identifierKey == "surveyID", let identifier, let answers else { return nil }
            return .answerSurvey(SurveyID(identifier), answers: answers)
        case "setProfileField":
            guard let field, fields == 2 + (value == nil ? 0 : 1) + (basedOn == nil ? 0 : 1) else { return nil }
            var stamp: HLCTimestamp?
            if let basedOn {
                guard let parsed = try? HLCTimestamp(wire: basedOn, field: "basedOn") else { return nil }
                stamp = parsed
            }
            return .setProfileField(field, value: value, basedOn: stamp)
        case "setConsent":
            guard fields == 3, let consent, let granted else { return nil }
            return .setConsent(consent, granted: granted)
        case "requestErasure":
            guard fields == 1 else { return nil }
            return .requestErasure
        default: return nil
        }
    }
}
