import Foundation
import LoyaltyAPI

/// The coders the generated types of docs/openapi.yaml use on the wire, for reading and writing reference JSON.
enum WireCoders {
    static var decoder: JSONDecoder { PushJSON.wireDecoder }

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(try RFC3339DateTranscoder().encode(date))
        }
        return encoder
    }
}
