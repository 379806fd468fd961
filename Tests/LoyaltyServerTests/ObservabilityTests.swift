import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import LoyaltyCore
import LoyaltyTesting
import NIOCore
import Synchronization
import Testing

@testable import LoyaltyServer

/// What an operator of several instances reads: latency histograms with the instance's name on `/metrics`, and the
/// request's id on every log line written while it was answered.
@Suite struct ObservabilityTests {
    @Test func everyLogLineOfARequestCarriesItsIdAndTheAnswerSaysIt() async throws {
        let captured = Shared<[String]>([])
        let logger = Logger(label: "test") { _ in
            CapturingLogHandler(lines: captured, metadataProvider: RequestID.metadataProvider)
        }
        let harness = try await TestServer.make(logger: logger)
        try await harness.application().test(.router) { client in
            let body = #"{"name": "Anna Schmidt", "email": "ids@example.de", "password": "correct horse"}"#
            try await client.execute(
                uri: "/v1/auth/enroll", method: .post,
                headers: [
                    .contentType: "application/json", HTTPField.Name("Loyalty-Protocol")!: "1",
                    HTTPField.Name("X-Request-ID")!: "enrol-0042",
                ], body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .created)
                #expect(response.headers[HTTPField.Name("X-Request-ID")!] == "enrol-0042")
            }
            // An id that could forge a log line is replaced by one of the server's.
            try await client.execute(
                uri: "/healthz", method: .get, headers: [HTTPField.Name("X-Request-ID")!: "a\nb"]
            ) { response in
                let id = response.headers[HTTPField.Name("X-Request-ID")!] ?? ""
                #expect(id.count == 16 && id.allSatisfy(\.isHexDigit))
            }
        }
        let lines = captured.withLock { $0 }
        let enrolled = try #require(lines.first { $0.hasPrefix("info enrolled ") }, "\(lines)")
        #expect(enrolled.contains("request=enrol-0042"))
        #expect(lines.filter { $0.contains("request=enrol-0042") }.count >= 2, "the request's own line too")
    }

    @Test func metricsHaveLatencyHistogramsAndTheInstanceName() async throws {
        let harness = try await TestServer.make()
        let (session, device) = try await harness.enroll()
        try await harness.give(600, to: session.memberID)
        let service = SyncService(
            storage: harness.service.storage, clock: harness.clock, configuration: harness.service.configuration,
            tokens: TokenAuthority(key: try TokenAuthority.loadKey(in: harness.settings.dataDirectory)),
            logger: harness.logger,
            metrics: ServerMetrics(instanceName: "eu-1"))
        _ = try await service.push(
            PushRequest(deviceID: device.id, mutations: [harness.envelope(device, 1, .redeemReward("voucher-5"))]),
            from: device)
        _ = try await service.run(.unlock)
        let text = service.metrics.render()
        #expect(text.contains(#"loyalty_store_unit_duration_seconds_count{instance_name="eu-1"} 1"#), "\(text)")
        #expect(text.contains(#"loyalty_request_duration_seconds_bucket{operation="push",instance_name="eu-1""#))
        #expect(text.contains(#"loyalty_job_duration_seconds_bucket{job="unlock",instance_name="eu-1""#))
        #expect(text.contains(#"loyalty_mutations_total{status="applied",instance_name="eu-1"} 1"#))
    }
}
