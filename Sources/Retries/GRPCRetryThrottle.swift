//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// gRPC's retry throttling: a token bucket per server name that stops retries and hedges once failures have
/// drained it to half.
///
/// Source: gRFC A6 (`retryThrottling` in the service config); grpc-go `clientconn.go` (`retryThrottler`) and
/// `stream.go`. `token_count` starts at `maxTokens` (in (0, 1000]). Each counted failure takes one token (floor 0);
/// each successful RPC adds `tokenRatio` (> 0, kept to 3 decimals; capped at `maxTokens`). Retries and hedges are
/// allowed only while `token_count > maxTokens / 2`. A6's example is `maxTokens 10, tokenRatio 0.1`.
///
/// Only failures with a retryable (or, under hedging, non-fatal) status, or with "do not retry" pushback, count: the
/// caller reports exactly those through ``attemptFailed(at:)``, before asking ``tryRetry(at:)`` (grpc-go's
/// `throttle()` takes the token first, then compares). Tokens are kept as integer thousandths, so the arithmetic is
/// exact. Time is not used: the bucket moves only with outcomes.
public struct GRPCRetryThrottle: RetryBudget, Equatable {
    /// `maxTokens`: the bucket's size and starting count.
    public let maxTokens: Double
    /// `tokenRatio`: the tokens a successful RPC adds, to 3 decimals.
    public let tokenRatio: Double
    private let maxMilliTokens: Int64
    private let ratioMilliTokens: Int64
    private var milliTokens: Int64

    /// Creates a full bucket.
    ///
    /// - Throws: ``PolicyParameterError`` naming `max_tokens` (outside (0, 1000]) or `token_ratio` (not positive
    ///   once kept to 3 decimals).
    public init(maxTokens: Double, tokenRatio: Double) throws {
        if !(maxTokens > 0 && maxTokens <= 1000) {
            throw PolicyParameterError("max_tokens", "must be greater than 0 and at most 1000, got \(maxTokens)")
        }
        let ratio = tokenRatio.isFinite ? (tokenRatio * 1000).rounded() : 0
        if !(ratio >= 1 && ratio <= 1e15) {
            throw PolicyParameterError("token_ratio", "must be at least 0.001 (3 decimals are kept), got \(tokenRatio)")
        }
        self.maxTokens = maxTokens
        self.tokenRatio = ratio / 1000
        maxMilliTokens = Int64((maxTokens * 1000).rounded())
        ratioMilliTokens = Int64(ratio)
        milliTokens = maxMilliTokens
    }

    /// The current `token_count`.
    public var tokens: Double { Double(milliTokens) / 1000 }

    /// Whether retries and hedges are stopped now: `token_count ≤ maxTokens / 2`.
    /// - Complexity: O(1).
    public var isThrottling: Bool { 2 * milliTokens <= maxMilliTokens }

    /// Does nothing: every RPC counts only when it ends.
    public mutating func requestStarted(at now: SimInstant) {}

    /// Takes one token for a counted failure (floor 0).
    /// - Complexity: O(1).
    public mutating func attemptFailed(at now: SimInstant) {
        milliTokens = max(0, milliTokens - 1000)
    }

    /// Whether a retry or hedge may be sent: `token_count > maxTokens / 2`. Takes nothing itself.
    /// - Complexity: O(1).
    public mutating func tryRetry(at now: SimInstant) -> Bool { !isThrottling }

    /// Does nothing: the attempt's outcome is reported through ``attemptFailed(at:)`` or the request's end.
    public mutating func retryFinished(at now: SimInstant) {}

    /// Adds `tokenRatio` (capped at `maxTokens`) when the RPC succeeded.
    /// - Complexity: O(1).
    public mutating func requestFinished(success: Bool, at now: SimInstant) {
        if success { milliTokens = min(maxMilliTokens, milliTokens + ratioMilliTokens) }
    }
}
