//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// Finagle's retry budget: retries may be a share of recent requests plus a fixed minimum rate, kept in a leaky token
/// bucket over a sliding window.
///
/// Source: Finagle `RetryBudget.scala` (`RetryBudget.apply`) and `TokenBucket.newLeakyBucket` over a
/// `WindowedAdder(ttl, 10 slices)`. Defaults: `ttl` 10 s (limited to 1–60 s), `minRetriesPerSec` 10,
/// `percentCanRetry` 0.2 (limited to 0–1000). In integer tokens with a scale factor of 1000:
/// - each request deposits 1000 tokens; each retry withdraws `1000 / percentCanRetry` (5000 for 0.2), truncated;
/// - a constant reserve of `minRetriesPerSec × ttl_seconds × withdrawal` (500,000: 100 retries) is always counted
///   as available; it is a floor per window, not an accumulating credit;
/// - the balance is the sum of deposits and withdrawals over the last ttl plus the reserve, and a retry is allowed
///   when the balance covers one withdrawal (`count ≥ withdrawal`), which it then subtracts.
///
/// So retries stay within 20 % of the requests of the last 10 s plus 10 per second over 10 s. Special cases as in
/// Finagle: `percentCanRetry = 0` makes each retry cost 1 token and requests earn none (only the minimum rate
/// remains); with `minRetriesPerSec = 0` as well, no retry is ever allowed (Finagle's `Empty`).
///
/// The window is 10 slices of ttl/10 held inline; a slice's deposits and withdrawals expire 9–10 slices after it
/// begins, so they count for between 0.9 × ttl and ttl, about ttl as in Finagle. `ttl_seconds` is the ttl in whole
/// seconds, as Finagle's `inSeconds` gives it. No call allocates.
public struct FinagleRetryBudget: RetryBudget {
    /// Tokens per unit (Finagle's `ScaleFactor`).
    public static let scaleFactor: Int64 = 1000
    /// Slices of the sliding window.
    public static let sliceCount = 10

    /// How long deposits and withdrawals count (`ttl`).
    public let ttl: SimDuration
    /// Retries per second always allowed (`minRetriesPerSec`).
    public let minRetriesPerSecond: Int
    /// The share of requests that may be retried (`percentCanRetry`; 0.2 is 20 %).
    public let percentCanRetry: Double
    /// Tokens each request deposits: 1000, or 0 when `percentCanRetry` is 0.
    public let depositAmount: Int64
    /// Tokens each retry withdraws: `1000 / percentCanRetry` truncated, or 1 when `percentCanRetry` is 0.
    public let withdrawalAmount: Int64
    /// Tokens always counted as available: `minRetriesPerSec × ttl_seconds × withdrawalAmount`.
    public let reserve: Int64

    private let sliceWidth: Int64
    private var slots = InlineArray<10, Int64>(repeating: 0)
    private var windowSum: Int64 = 0
    private var currentSlice: Int64 = 0

    /// Creates a budget with Finagle's defaults unless given.
    ///
    /// - Throws: ``PolicyParameterError`` naming `ttl` (outside 1–60 s), `min_retries_per_sec` (negative) or
    ///   `percent_can_retry` (outside 0–1000).
    public init(
        ttl: SimDuration = .seconds(10),
        minRetriesPerSecond: Int = 10,
        percentCanRetry: Double = 0.2
    ) throws {
        if ttl < .seconds(1) || ttl > .seconds(60) {
            throw PolicyParameterError("ttl", "must be between 1s and 60s, got \(ttl.formatted)")
        }
        if minRetriesPerSecond < 0 {
            throw PolicyParameterError("min_retries_per_sec", "must not be negative, got \(minRetriesPerSecond)")
        }
        if !(percentCanRetry >= 0 && percentCanRetry <= 1000) {
            throw PolicyParameterError("percent_can_retry", "must be between 0 and 1000, got \(percentCanRetry)")
        }
        self.ttl = ttl
        self.minRetriesPerSecond = minRetriesPerSecond
        self.percentCanRetry = percentCanRetry
        if percentCanRetry == 0 {
            depositAmount = 0
            withdrawalAmount = 1
        } else {
            depositAmount = Self.scaleFactor
            // Truncated as Finagle's toInt does; bounded so the reserve below cannot overflow.
            withdrawalAmount = Int64(min(Double(Self.scaleFactor) / percentCanRetry, 1e12))
        }
        let ttlSeconds = ttl.nanoseconds / 1_000_000_000
        let (perWindow, overflow1) = Int64(minRetriesPerSecond).multipliedReportingOverflow(by: ttlSeconds)
        let (reserve, overflow2) = perWindow.multipliedReportingOverflow(by: withdrawalAmount)
        self.reserve = overflow1 || overflow2 ? Int64.max / 4 : reserve
        sliceWidth = ttl.nanoseconds / Int64(Self.sliceCount)
    }

    /// Adds one request's deposit at `now`.
    /// - Complexity: O(1) amortized; at most `sliceCount` slots are cleared per call.
    public mutating func deposit(at now: SimInstant) {
        advance(to: now)
        add(depositAmount)
    }

    /// Withdraws one retry's tokens at `now` if the balance covers them; returns whether it did.
    /// - Complexity: O(1) amortized.
    public mutating func tryWithdraw(at now: SimInstant) -> Bool {
        advance(to: now)
        guard windowSum + reserve >= withdrawalAmount else { return false }
        add(-withdrawalAmount)
        return true
    }

    /// The tokens available at `now`: the window's sum plus the reserve (Finagle's `count`).
    /// - Complexity: O(1) amortized.
    public mutating func count(at now: SimInstant) -> Int64 {
        advance(to: now)
        return windowSum + reserve
    }

    /// The retries the budget would allow at `now`: `count / withdrawalAmount` (Finagle's `balance`).
    /// - Complexity: O(1) amortized.
    public mutating func balance(at now: SimInstant) -> Int64 {
        count(at: now) / withdrawalAmount
    }

    /// Deposits, as Finagle does for each request.
    /// - Complexity: O(1) amortized.
    public mutating func requestStarted(at now: SimInstant) { deposit(at: now) }

    /// Does nothing: Finagle's budget counts requests and retries, not failures.
    public mutating func attemptFailed(at now: SimInstant) {}

    /// Withdraws a retry's tokens if the balance covers them.
    /// - Complexity: O(1) amortized.
    public mutating func tryRetry(at now: SimInstant) -> Bool { tryWithdraw(at: now) }

    /// Does nothing: a withdrawal is not returned when the retry ends.
    public mutating func retryFinished(at now: SimInstant) {}

    /// Does nothing: the deposit was made when the request started.
    public mutating func requestFinished(success: Bool, at now: SimInstant) {}

    /// Adds `amount` to the current slice.
    private mutating func add(_ amount: Int64) {
        let index = Self.slotIndex(currentSlice)
        slots[index] += amount
        windowSum += amount
    }

    /// Moves the window to the slice holding `now`, clearing the slices that fell out of it.
    ///
    /// Time that goes backwards stays in the current slice (the budget expects a monotonic clock but does not trap).
    private mutating func advance(to now: SimInstant) {
        let ns = now.nanoseconds
        let slice = ns >= 0 ? ns / sliceWidth : -((-ns + sliceWidth - 1) / sliceWidth)
        guard slice > currentSlice else { return }
        if slice - currentSlice >= Int64(Self.sliceCount) {
            for i in 0..<Self.sliceCount { slots[i] = 0 }
            windowSum = 0
        } else {
            var s = currentSlice + 1
            while s <= slice {
                let index = Self.slotIndex(s)
                windowSum -= slots[index]
                slots[index] = 0
                s += 1
            }
        }
        currentSlice = slice
    }

    /// The slot that holds slice `slice`.
    private static func slotIndex(_ slice: Int64) -> Int {
        let r = Int(slice % Int64(sliceCount))
        return r < 0 ? r + sliceCount : r
    }
}
