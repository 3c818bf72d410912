//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

import SimCore

/// The failures an HTTP retry policy retries, by Envoy's `retry_on` names.
///
/// Source: Envoy router filter docs (`x-envoy-retry-on`) and `route_components.proto` (`RetryPolicy.retry_on`):
/// - `5xx`: any 5xx response, or no response at all (disconnect, reset, read timeout); includes `connect-failure` and
///   `refused-stream`.
/// - `gateway-error`: like `5xx` but only 502, 503 and 504 (Envoy answers a reset with 503 and a per-try timeout with
///   504, so those are retried too).
/// - `reset`: the upstream did not respond at all (disconnect, reset, read timeout).
/// - `connect-failure`: the connection to the upstream could not be made (a TCP-level failure or connect timeout).
/// - `retriable-4xx`: a retriable 4xx; the only one is 409.
/// - `refused-stream`: the upstream reset the stream with `REFUSED_STREAM`, which marks a request as safe to retry.
/// - `retriable-status-codes`: a status in the policy's `retriable_status_codes` list.
/// - `timeout`: a per-try timeout alone. Envoy has no `retry_on` name of its own for this (it retries per-try timeouts
///   under `5xx`, `gateway-error` and `reset`); this simulator offers it to retry timeouts and nothing else.
///
/// gRPC status codes are a separate set, ``GRPCStatusCodes`` (Envoy's `retry_on` gRPC names such as `unavailable`
/// and gRPC's `retryableStatusCodes` both map to it).
public struct RetryOn: OptionSet, Sendable, Hashable {
    /// The bit set.
    public var rawValue: UInt16

    /// Creates the set with bits `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `5xx`: any 5xx response, or no response at all.
    public static let fiveXX = RetryOn(rawValue: 1 << 0)
    /// `gateway-error`: a 502, 503 or 504 response, or no response (which a proxy reports as 503 or 504).
    public static let gatewayError = RetryOn(rawValue: 1 << 1)
    /// `reset`: no response at all (disconnect, reset, read timeout).
    public static let reset = RetryOn(rawValue: 1 << 2)
    /// `connect-failure`: the connection could not be made.
    public static let connectFailure = RetryOn(rawValue: 1 << 3)
    /// `retriable-4xx`: a 409 response.
    public static let retriable4xx = RetryOn(rawValue: 1 << 4)
    /// `refused-stream`: the upstream refused the stream (HTTP/2 `REFUSED_STREAM`).
    public static let refusedStream = RetryOn(rawValue: 1 << 5)
    /// `retriable-status-codes`: a status in the policy's list of retriable status codes.
    public static let retriableStatusCodes = RetryOn(rawValue: 1 << 6)
    /// `timeout`: a per-try timeout (a simulator name; see the type's notes).
    public static let timeout = RetryOn(rawValue: 1 << 7)

    /// Each condition with its name, in the order names are listed.
    public static let named: [(name: String, condition: RetryOn)] = [
        ("5xx", .fiveXX), ("gateway-error", .gatewayError), ("reset", .reset), ("connect-failure", .connectFailure),
        ("retriable-4xx", .retriable4xx), ("refused-stream", .refusedStream),
        ("retriable-status-codes", .retriableStatusCodes), ("timeout", .timeout),
    ]

    /// Reads a comma-separated list of condition names, as Envoy's `retry_on` is written (e.g. `5xx,reset`).
    ///
    /// Spaces around names are ignored; an empty string is the empty set.
    /// - Throws: ``PolicyParameterError`` naming `parameter` for an unknown name, listing the valid ones.
    public static func parse(_ text: String, parameter: String = "retry_on") throws -> RetryOn {
        var result = RetryOn()
        for part in text.split(separator: ",") {
            let name = String(part).trimmingSpaces()
            if name.isEmpty { continue }
            guard let entry = named.first(where: { $0.name == name }) else {
                let names = named.map(\.name)
                var message = "unknown retry condition '\(name)'"
                if let guess = closestName(to: name, among: names) { message += " (did you mean '\(guess)'?)" }
                message += "; valid conditions: " + names.joined(separator: ", ")
                message += " (gRPC status codes go in retryable_status_codes)"
                throw PolicyParameterError(parameter, message)
            }
            result.insert(entry.condition)
        }
        return result
    }

    /// The set's names joined by commas, in ``named`` order (the inverse of ``parse(_:parameter:)``).
    public var names: String {
        RetryOn.named.filter { contains($0.condition) }.map(\.name).joined(separator: ",")
    }
}

/// A gRPC status code, with its number and canonical name.
///
/// Source: the gRPC status codes (`grpc/grpc doc/statuscodes.md`; `google.rpc.Code`), as used by gRFC A6's
/// `retryableStatusCodes` and `nonFatalStatusCodes`.
public enum GRPCStatusCode: Int, CaseIterable, Sendable {
    /// 0: not an error.
    case ok = 0
    /// 1: the operation was cancelled, typically by the caller.
    case cancelled = 1
    /// 2: an unknown error.
    case unknown = 2
    /// 3: the client gave an invalid argument.
    case invalidArgument = 3
    /// 4: the deadline expired before the operation completed.
    case deadlineExceeded = 4
    /// 5: an entity was not found.
    case notFound = 5
    /// 6: the entity the client tried to create already exists.
    case alreadyExists = 6
    /// 7: the caller may not perform the operation.
    case permissionDenied = 7
    /// 8: a resource (quota, memory…) is exhausted.
    case resourceExhausted = 8
    /// 9: the system is not in a state the operation requires.
    case failedPrecondition = 9
    /// 10: the operation was aborted, typically by a concurrency conflict.
    case aborted = 10
    /// 11: the operation went past the valid range.
    case outOfRange = 11
    /// 12: the operation is not implemented or supported.
    case unimplemented = 12
    /// 13: an internal error.
    case `internal` = 13
    /// 14: the service is currently unavailable; usually transient.
    case unavailable = 14
    /// 15: unrecoverable data loss or corruption.
    case dataLoss = 15
    /// 16: the request lacks valid authentication credentials.
    case unauthenticated = 16

    /// The canonical name, e.g. `UNAVAILABLE`, `DEADLINE_EXCEEDED`.
    public var name: String {
        switch self {
        case .ok: return "OK"
        case .cancelled: return "CANCELLED"
        case .unknown: return "UNKNOWN"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .deadlineExceeded: return "DEADLINE_EXCEEDED"
        case .notFound: return "NOT_FOUND"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .permissionDenied: return "PERMISSION_DENIED"
        case .resourceExhausted: return "RESOURCE_EXHAUSTED"
        case .failedPrecondition: return "FAILED_PRECONDITION"
        case .aborted: return "ABORTED"
        case .outOfRange: return "OUT_OF_RANGE"
        case .unimplemented: return "UNIMPLEMENTED"
        case .internal: return "INTERNAL"
        case .unavailable: return "UNAVAILABLE"
        case .dataLoss: return "DATA_LOSS"
        case .unauthenticated: return "UNAUTHENTICATED"
        }
    }

    /// The code named `name`: canonical (`UNAVAILABLE`), any case, with `-` for `_` (Envoy's `resource-exhausted`).
    public init?(name: String) {
        var canonical = ""
        for ch in name.uppercased() { canonical.append(ch == "-" ? "_" : ch) }
        guard let code = GRPCStatusCode.allCases.first(where: { $0.name == canonical }) else { return nil }
        self = code
    }
}

/// A set of gRPC status codes, such as A6's `retryableStatusCodes` or `nonFatalStatusCodes`.
///
/// Source: gRFC A6 (`retryPolicy.retryableStatusCodes`, `hedgingPolicy.nonFatalStatusCodes`); Envoy's gRPC
/// `retry_on` names (`cancelled`, `deadline-exceeded`, `internal`, `resource-exhausted`, `unavailable`) map here too.
public struct GRPCStatusCodes: OptionSet, Sendable, Hashable {
    /// One bit per code number.
    public var rawValue: UInt32

    /// Creates the set with bits `rawValue`.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The set holding `codes`.
    public init(_ codes: [GRPCStatusCode]) {
        self.rawValue = 0
        for code in codes { insert(code) }
    }

    /// The set holding exactly `code`.
    public init(_ code: GRPCStatusCode) { self.rawValue = 1 << UInt32(code.rawValue) }

    /// Adds `code`.
    public mutating func insert(_ code: GRPCStatusCode) { formUnion(GRPCStatusCodes(code)) }

    /// Whether the set holds `code`.
    /// - Complexity: O(1).
    public func contains(_ code: GRPCStatusCode) -> Bool { rawValue & (1 << UInt32(code.rawValue)) != 0 }

    /// The codes in the set, in numeric order.
    public var codes: [GRPCStatusCode] { GRPCStatusCode.allCases.filter { contains($0) } }

    /// Reads a comma-separated list of code names (`UNAVAILABLE,RESOURCE_EXHAUSTED`, or Envoy's `unavailable`).
    ///
    /// - Throws: ``PolicyParameterError`` naming `parameter` for an unknown name, listing the valid ones.
    public static func parse(_ text: String, parameter: String) throws -> GRPCStatusCodes {
        var result = GRPCStatusCodes()
        for part in text.split(separator: ",") {
            let name = String(part).trimmingSpaces()
            if name.isEmpty { continue }
            guard let code = GRPCStatusCode(name: name) else {
                let names = GRPCStatusCode.allCases.map(\.name)
                var message = "unknown gRPC status code '\(name)'"
                if let guess = closestName(to: name.uppercased(), among: names) {
                    message += " (did you mean '\(guess)'?)"
                }
                message += "; valid codes: " + names.joined(separator: ", ")
                throw PolicyParameterError(parameter, message)
            }
            result.insert(code)
        }
        return result
    }
}

/// How one attempt of a request failed, as a retry policy sees it.
public enum AttemptFailure: Sendable, Hashable {
    /// The upstream answered with an HTTP status (only 4xx and 5xx are failures a policy may retry).
    case httpStatus(Int)
    /// The upstream answered with a non-OK gRPC status.
    case grpcStatus(GRPCStatusCode)
    /// The connection or stream was reset, or disconnected, before a response.
    case reset
    /// The connection to the upstream could not be made (refused, or the connect timed out).
    case connectFailure
    /// The upstream refused the stream (HTTP/2 `REFUSED_STREAM`): it did not process the request.
    case refusedStream
    /// The attempt's per-try timeout expired before a response.
    case perTryTimeout
}
