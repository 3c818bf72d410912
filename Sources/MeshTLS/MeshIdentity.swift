//===----------------------------------------------------------------------===//
// meshsim — MeshTLS
//===----------------------------------------------------------------------===//

/// The identity of a mesh workload, as a SPIFFE ID: `spiffe://TRUST_DOMAIN/ns/default/sa/NAME`.
///
/// The path follows the Kubernetes service-account form Istio and Linkerd issue (SPIFFE ID specification,
/// `spiffe.io/docs/latest/spiffe-about/spiffe-concepts/#spiffe-id`: a trust domain and a path). `NAME` is the
/// scenario's service or client name; a byte outside the characters SPIFFE allows in a path segment
/// (`A-Z a-z 0-9 . - _`) is percent-encoded.
public struct MeshIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The trust domain (the SPIFFE ID's authority).
    public var trustDomain: String
    /// The workload's name: a service or a client of the scenario.
    public var name: String

    /// The default trust domain.
    public static let defaultTrustDomain = "meshsim.local"

    /// Creates the identity of `name` in `trustDomain`.
    public init(name: String, trustDomain: String = MeshIdentity.defaultTrustDomain) {
        self.name = name
        self.trustDomain = trustDomain
    }

    /// Parses a SPIFFE ID of the form `spiffe://TRUST_DOMAIN/ns/NAMESPACE/sa/NAME`; `nil` for anything else.
    public init?(uri: String) {
        let scheme = "spiffe://"
        guard uri.hasPrefix(scheme) else { return nil }
        let parts = uri.dropFirst(scheme.count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 5, !parts[0].isEmpty, parts[1] == "ns", !parts[2].isEmpty, parts[3] == "sa",
            let name = Self.decode(parts[4]), !name.isEmpty
        else { return nil }
        self.trustDomain = String(parts[0])
        self.name = name
    }

    /// The SPIFFE ID.
    public var uri: String { "spiffe://\(trustDomain)/ns/default/sa/\(Self.encode(name))" }

    public var description: String { uri }

    /// The stem of the workload's credential files (`STEM.pem`, `STEM.key`): its name as the SPIFFE ID spells it.
    public var fileStem: String { Self.encode(name) }

    /// `name` with every byte outside `A-Z a-z 0-9 . - _` percent-encoded (also the credential file's stem).
    static func encode(_ name: String) -> String {
        var out = ""
        for byte in name.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 15)]))
            }
        }
        return out
    }

    /// Undoes ``encode(_:)``; `nil` for a malformed escape or bytes that are not UTF-8.
    static func decode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
