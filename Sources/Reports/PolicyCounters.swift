//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

/// What the policy modules did: retries, ejections, breaker and limiter decisions, hedges.
///
/// Counted when they happen (in the window where they happen; in the summary when they happen within
/// [warmup, duration)).
public struct PolicyCounters: Sendable, Equatable {
    /// Which counter.
    public enum Kind: Int, CaseIterable, Sendable {
        /// Attempts on any edge that were retries.
        case retries
        /// Retries a retry budget or throttle refused.
        case retriesDenied
        /// Endpoints ejected by outlier detection.
        case ejections
        /// Circuit breakers that opened (tripped).
        case breakerOpens
        /// Attempts a circuit breaker (or an Envoy threshold) refused.
        case breakerRejections
        /// Requests a rate or concurrency limiter refused.
        case limiterRejections
        /// Hedged attempts sent.
        case hedgesSent
        /// Hedged attempts whose answer won.
        case hedgesWon
        /// All attempts on every edge (for retry amplification).
        case attempts
        /// Requests an authorization rule denied (answered 403).
        case authzDenials
        /// Mutual-TLS handshakes: new connections to a replica.
        case tlsHandshakes

        /// The CSV column.
        public var column: String {
            switch self {
            case .retries: return "retries"
            case .retriesDenied: return "retries_denied"
            case .ejections: return "ejections"
            case .breakerOpens: return "breaker_opens"
            case .breakerRejections: return "breaker_rejections"
            case .limiterRejections: return "limiter_rejections"
            case .hedgesSent: return "hedges_sent"
            case .hedgesWon: return "hedges_won"
            case .attempts: return "attempts_all_edges"
            case .authzDenials: return "authz_denials"
            case .tlsHandshakes: return "tls_handshakes"
            }
        }
    }

    private var values: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /// Creates zeroed counters.
    public init() {}

    public static func == (lhs: PolicyCounters, rhs: PolicyCounters) -> Bool {
        Kind.allCases.allSatisfy { lhs[$0] == rhs[$0] }
    }

    /// Adds one to `kind`.
    ///
    /// - Complexity: O(1).
    @inline(__always)
    public mutating func increment(_ kind: Kind) {
        switch kind {
        case .retries: values.0 &+= 1
        case .retriesDenied: values.1 &+= 1
        case .ejections: values.2 &+= 1
        case .breakerOpens: values.3 &+= 1
        case .breakerRejections: values.4 &+= 1
        case .limiterRejections: values.5 &+= 1
        case .hedgesSent: values.6 &+= 1
        case .hedgesWon: values.7 &+= 1
        case .attempts: values.8 &+= 1
        case .authzDenials: values.9 &+= 1
        case .tlsHandshakes: values.10 &+= 1
        }
    }

    /// The count of `kind`.
    public subscript(kind: Kind) -> UInt64 {
        switch kind {
        case .retries: return values.0
        case .retriesDenied: return values.1
        case .ejections: return values.2
        case .breakerOpens: return values.3
        case .breakerRejections: return values.4
        case .limiterRejections: return values.5
        case .hedgesSent: return values.6
        case .hedgesWon: return values.7
        case .attempts: return values.8
        case .authzDenials: return values.9
        case .tlsHandshakes: return values.10
        }
    }

    /// The counters written before `retry_amplification` and `concurrency_limit` (the columns of earlier versions
    /// keep their places; later counters follow).
    static let leading: [Kind] = [
        .retries, .retriesDenied, .ejections, .breakerOpens, .breakerRejections, .limiterRejections, .hedgesSent,
        .hedgesWon, .attempts,
    ]
    /// The counters written after `concurrency_limit`.
    static let trailing: [Kind] = [.authzDenials, .tlsHandshakes]

    /// The CSV columns, in order: the leading counters, `retry_amplification`, `concurrency_limit`, the trailing
    /// counters.
    public static let columns =
        leading.map(\.column) + ["retry_amplification", "concurrency_limit"] + trailing.map(\.column)

    /// Attempts per call on all edges: all attempts over first attempts (1 without retries or hedges).
    public var retryAmplification: Double? {
        let first = self[.attempts] &- self[.retries] &- self[.hedgesSent]
        return first == 0 ? nil : Double(self[.attempts]) / Double(first)
    }

    /// The cells for ``columns``: counts, retry amplification, and the mean adaptive concurrency limit (empty when
    /// no limiter is configured).
    public func cells(concurrencyLimit: Double?) -> [String] {
        Self.leading.map { String(self[$0]) } + [
            CSVFormat.fixed(retryAmplification, digits: 4), CSVFormat.fixed(concurrencyLimit, digits: 2),
        ] + Self.trailing.map { String(self[$0]) }
    }
}
