//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

import SimCore

/// Which formula a ``Backoff`` uses to space out retries.
///
/// Each case is one production system's or one paper's formula, named for its source; `name` is the spelling a
/// scenario file uses. See ``Backoff`` for the parameters and the exact formulas.
public enum BackoffKind: String, CaseIterable, Sendable {
    /// No backoff: every retry is sent at once (AWS backoff simulator's "no backoff" baseline).
    case none
    /// Exponential backoff without jitter: `min(cap, base × 2^n)` (AWS, "Exponential Backoff And Jitter").
    case exponential
    /// AWS "Full Jitter": `U(0, min(cap, base × 2^n))`.
    case fullJitter
    /// AWS "Equal Jitter": half the exponential backoff plus `U(0, half)`.
    case equalJitter
    /// AWS "Decorrelated Jitter": `min(cap, U(base, previous × 3))`; stateful.
    case decorrelatedJitter
    /// Envoy's `JitteredExponentialBackOffStrategy`: retry k sleeps `U[0, min(2^(k−1) × base, max))`.
    case envoy
    /// gRPC retry backoff, current gRFC A6 (Aug 2024, grpc/proposal PR #452): the capped exponential × `U(0.8, 1.2)`.
    case grpcRetry
    /// gRPC retry backoff, original gRFC A6: `U(0, min(initial × multiplier^(n−1), max))`, i.e. full jitter.
    case grpcRetryOriginal
    /// gRPC connection backoff as `doc/connection-backoff.md` gives it: un-jittered growth, ±20 % on each wait.
    case grpcConnectionNew
    /// gRPC C-core's earlier connection backoff (`gpr_backoff`): each jittered wait grows into the next, clamped.
    case grpcConnectionOld

    /// The kind's name as written in scenario files (snake_case), e.g. `full_jitter`.
    public var name: String {
        switch self {
        case .none: return "none"
        case .exponential: return "exponential"
        case .fullJitter: return "full_jitter"
        case .equalJitter: return "equal_jitter"
        case .decorrelatedJitter: return "decorrelated_jitter"
        case .envoy: return "envoy"
        case .grpcRetry: return "grpc_retry"
        case .grpcRetryOriginal: return "grpc_retry_original"
        case .grpcConnectionNew: return "grpc_connection_new"
        case .grpcConnectionOld: return "grpc_connection_old"
        }
    }

    /// Every valid kind name, in declaration order.
    public static var names: [String] { allCases.map(\.name) }

    /// The kind named `name` (as in scenario files), or `nil` when no kind has that name.
    public init?(name: String) {
        guard let kind = BackoffKind.allCases.first(where: { $0.name == name }) else { return nil }
        self = kind
    }

    /// Reads a kind name, throwing an error that lists the valid names (and the likely one) when it is unknown.
    ///
    /// - Parameter parameter: the key the name was read from, reported in the error.
    /// - Throws: ``PolicyParameterError`` naming `parameter`.
    public static func parse(_ name: String, parameter: String = "kind") throws -> BackoffKind {
        if let kind = BackoffKind(name: name) { return kind }
        var message = "unknown backoff kind '\(name)'"
        if let guess = closestName(to: name, among: names) { message += " (did you mean '\(guess)'?)" }
        message += "; valid kinds: " + names.joined(separator: ", ")
        throw PolicyParameterError(parameter, message)
    }

    /// Whether the kind remembers its previous sleep (so ``Backoff/next(attempt:using:)`` depends on the call history).
    public var isStateful: Bool { self == .decorrelatedJitter || self == .grpcConnectionOld }

    /// The growth factor the source fixes or defaults to: 2 for AWS and Envoy, 3 for decorrelated jitter's spread,
    /// 1.6 for gRPC connection backoff; gRPC retry backoff has no default (`backoffMultiplier` is required), so 2.
    public var defaultMultiplier: Double {
        switch self {
        case .none, .exponential, .fullJitter, .equalJitter, .envoy, .grpcRetry, .grpcRetryOriginal: return 2
        case .decorrelatedJitter: return 3
        case .grpcConnectionNew, .grpcConnectionOld: return 1.6
        }
    }

    /// The jitter fraction the source uses: 0.2 (±20 %) for the gRPC kinds that jitter around the backoff, 0 otherwise.
    public var defaultJitter: Double {
        switch self {
        case .grpcRetry, .grpcConnectionNew, .grpcConnectionOld: return 0.2
        default: return 0
        }
    }

    /// The snake_case names of the base, cap and multiplier parameters in the source's own vocabulary.
    public var parameterNames: (base: String, cap: String, multiplier: String) {
        switch self {
        case .none, .exponential, .fullJitter, .equalJitter, .decorrelatedJitter: return ("base", "cap", "multiplier")
        case .envoy: return ("base_interval", "max_interval", "multiplier")
        case .grpcRetry, .grpcRetryOriginal: return ("initial_backoff", "max_backoff", "backoff_multiplier")
        case .grpcConnectionNew, .grpcConnectionOld: return ("initial_backoff", "max_backoff", "multiplier")
        }
    }
}
