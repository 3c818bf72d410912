//===----------------------------------------------------------------------===//
// meshsim — Reports
//===----------------------------------------------------------------------===//

public import Histogram

/// An HDR histogram written as its layout and its non-empty buckets, so that it reads back bucket for bucket.
///
/// Shards of a distributed run keep these; a merge adds the histograms back together, so its percentiles are those
/// of every recorded value (never an average of percentiles). Only the non-empty buckets are written: a window's
/// histogram of a few thousand requests is a few hundred pairs, not the thousands of slots of the layout.
public struct HistogramRecord: Codable, Sendable, Equatable {
    /// The histogram's lowest discernible value.
    public var lowestDiscernibleValue: UInt64
    /// Its highest trackable value.
    public var highestTrackableValue: UInt64
    /// Its significant decimal digits (1 to 5).
    public var significantDigits: Int
    /// Each non-empty bucket as `[value, count]`, `value` being a value of the bucket, in increasing order.
    public var buckets: [[UInt64]]
    /// The smallest and largest values recorded, exactly (the histogram keeps them beside its buckets, and reports
    /// them as its 0th and 100th percentiles); nil when it is empty.
    public var min: UInt64?
    public var max: UInt64?

    /// The record of `histogram`.
    ///
    /// - Complexity: O(the histogram's slots).
    public init(_ histogram: Histogram<UInt64>) {
        lowestDiscernibleValue = histogram.lowestDiscernibleValue
        highestTrackableValue = histogram.highestTrackableValue
        significantDigits = Int(histogram.numberOfSignificantValueDigits.rawValue)
        buckets = histogram.recordedValues().map { [$0.value, $0.count] }
        min = histogram.totalCount > 0 ? histogram.min : nil
        max = histogram.totalCount > 0 ? histogram.maxRecorded : nil
    }

    /// Why a record cannot be read back.
    public struct Problem: Error, CustomStringConvertible {
        public var description: String
    }

    /// The histogram again, with the same layout and the same count in every bucket.
    ///
    /// - Throws: ``Problem`` for a layout the library refuses or a bucket outside it.
    public func histogram() throws(Problem) -> Histogram<UInt64> {
        // Only the layouts meshsim writes: a hostile record must not make the library trap or allocate without end.
        guard let digits = SignificantDigits(rawValue: Int8(clamping: significantDigits)), significantDigits <= 3,
            (1...1_000).contains(lowestDiscernibleValue), highestTrackableValue == LatencyStats.highestTrackable
        else {
            throw Problem(
                description: "a histogram layout of \(lowestDiscernibleValue)...\(highestTrackableValue) with "
                    + "\(significantDigits) significant digits is not one meshsim writes"
            )
        }
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: lowestDiscernibleValue,
            highestTrackableValue: highestTrackableValue,
            numberOfSignificantValueDigits: digits
        )
        var total: UInt64 = 0
        for bucket in buckets {
            let (sum, overflow) = total.addingReportingOverflow(bucket.count == 2 ? bucket[1] : 0)
            total = sum
            guard bucket.count == 2, bucket[0] <= highestTrackableValue, bucket[1] > 0, !overflow else {
                throw Problem(description: "the histogram bucket \(bucket) is not a [value, count] pair it holds")
            }
            // The exact extremes go into their buckets as themselves, so the histogram tracks them again.
            var remaining = bucket[1]
            var recorded = true
            for extreme in [max, min] {
                if let extreme, remaining > 0, extreme <= highestTrackableValue,
                    histogram.valuesAreEquivalent(bucket[0], extreme)
                {
                    recorded = recorded && histogram.record(extreme, count: 1)
                    remaining -= 1
                }
            }
            if remaining > 0 { recorded = recorded && histogram.record(bucket[0], count: remaining) }
            guard recorded else {
                throw Problem(description: "the histogram bucket \(bucket) is not a [value, count] pair it holds")
            }
        }
        return histogram
    }
}
