import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyTesting
import NIOCore
import Testing

@testable import LoyaltyServer

/// A real server in a temporary directory: SQLite file, signing key, test clock.
typealias Harness = TestServer

extension TestServer {
    /// Enrols a member in-process and returns the first device's session and record.
    func enroll(
        _ email: String = "anna-\(UUID().uuidString.prefix(6))@example.de"
    ) async throws -> (Session, DeviceRecord) {
        let session = try await service.enroll(
            Registration(name: "Anna Schmidt", email: email), password: "correct horse", deviceName: "phone")
        return (session, try #require(try await service.storage.device(session.deviceID)))
    }

    /// Signs the same member in on another device.
    func login(_ session: Session, email: String) async throws -> (Session, DeviceRecord) {
        let second = try await service.login(email: email, password: "correct horse", deviceName: "tablet")
        return (second, try #require(try await service.storage.device(second.deviceID)))
    }

    func envelope(
        _ device: DeviceRecord, _ sequence: UInt64, _ mutation: Mutation, at time: Timestamp? = nil
    ) -> MutationEnvelope {
        let now = time ?? clock.now()
        return MutationEnvelope(
            deviceID: device.id, sequence: sequence,
            stamp: HLCTimestamp(wallMilliseconds: now.millisecondsSince1970, counter: UInt16(sequence % 1000)),
            deviceTime: now, mutation: mutation)
    }
}

/// Calls a route through a Hummingbird test client and decodes the JSON answer.
struct Call {
    let status: Int
    let json: [String: Any]

    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    var errorMessage: String { (json["error"] as? [String: Any])?["message"] as? String ?? "" }

    static func make(
        _ client: some TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, body: String? = nil,
        token: String? = nil, protocolVersion: String? = "1"
    ) async throws -> Call {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let protocolVersion { headers[HTTPField.Name("Loyalty-Protocol")!] = protocolVersion }
        return try await client.execute(
            uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }
        ) { response in
            let data = Data(response.body.readableBytesView)
            let json =
                (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [
                    "raw": String(decoding: data, as: UTF8.self)
                ]
            return Call(status: Int(response.status.code), json: json)
        }
    }
}

extension PushResponse {
    var codes: [String] {
        results.map { result in
            switch result.status {
            case .applied: "applied"
            case .adjusted: "adjusted"
            case .rejected(let rejection): rejection.code.rawValue
            }
        }
    }
}
