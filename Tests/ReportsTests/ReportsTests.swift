import Reports
import Testing

@Suite("Reports")
struct ReportsTests {
    @Test("fixed-point formatting is exact, locale-free and empty for undefined values")
    func fixed() {
        #expect(CSVFormat.fixed(1.23456, digits: 3) == "1.235")
        #expect(CSVFormat.fixed(0.5, digits: 0) == "1")
        #expect(CSVFormat.fixed(-2.5, digits: 1) == "-2.5")
        #expect(CSVFormat.fixed(-0.00001, digits: 2) == "0.00")
        #expect(CSVFormat.fixed(12, digits: 4) == "12.0000")
        #expect(CSVFormat.fixed(nil, digits: 2) == "")
        #expect(CSVFormat.fixed(.nan, digits: 2) == "")
        #expect(CSVFormat.fixed(.infinity, digits: 2) == "")
        #expect(CSVFormat.field("a,b") == "\"a,b\"")
        #expect(CSVFormat.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }

    @Test("SHA-256 matches the FIPS 180-4 test vectors")
    func sha256() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        )
    }

    @Test("Student t quantiles and confidence intervals come out right")
    func statistics() {
        #expect(abs(Statistics.studentTQuantile(0.975, degreesOfFreedom: 9) - 2.262157) < 1e-5)
        #expect(abs(Statistics.studentTQuantile(0.975, degreesOfFreedom: 1) - 12.706205) < 1e-5)
        let (mean, half) = Statistics.meanWithCI95([1, 2, 3, 4, 5])
        #expect(mean == 3)
        // s = sqrt(2.5), t(0.975, 4) = 2.776445
        #expect(abs(half! - 2.776445 * (2.5 / 5).squareRoot()) < 1e-5)
        #expect(Statistics.meanWithCI95([7]).halfWidth == nil)
        #expect(Statistics.meanWithCI95([]).mean == nil)
    }

    @Test("latency statistics count outcomes and give percentiles within 0.1%")
    func latencyStats() {
        var stats = LatencyStats()
        for i in 1...10_000 {
            stats.record(latency: Int64(i) * 1_000, outcome: i % 100 == 0 ? .timedOut : .ok, attempts: 1)
        }
        #expect(stats.requests == 10_000)
        #expect(stats.count(.timedOut) == 100)
        #expect(stats.count(.ok) == 9_900)
        #expect(abs(stats.percentileMilliseconds(99)! / 9.9 - 1) < 0.001)
        #expect(abs(stats.meanMilliseconds! - 5.0005) < 1e-9)
        var other = LatencyStats()
        other.record(latency: 50_000_000, outcome: .failed, attempts: 3)
        stats.add(other)
        #expect(stats.requests == 10_001)
        #expect(stats.maxLatency == 50_000_000)
        #expect(stats.attempts == 10_003)
        stats.reset()
        #expect(stats.requests == 0 && stats.meanMilliseconds == nil)
    }

    @Test("a recorder writes one row per window, zero-filled, and a summary of measured requests only")
    func recorder() {
        let second: Int64 = 1_000_000_000
        var recorder = ReplicationRecorder(warmup: second, duration: 3 * second, window: second, rowPrefix: "s,v,1,")
        recorder.recordArrival(at: second / 2)
        recorder.recordFinish(start: second / 2, now: second / 2 + 1_000_000, outcome: .ok, attempts: 1)
        recorder.closeWindows(through: 3 * second / 2, inFlight: 1, queueDepth: 0)
        recorder.recordArrival(at: 3 * second / 2)
        recorder.closeWindows(through: 5 * second / 2, inFlight: 1, queueDepth: 0)
        recorder.recordFinish(start: 3 * second / 2, now: 5 * second / 2, outcome: .failed, attempts: 2)
        recorder.closeWindows(through: 3 * second, inFlight: 0, queueDepth: 0)
        let rows = recorder.timeseries.split(separator: "\n").map(String.init)
        #expect(rows.count == 3)
        #expect(rows[0].hasPrefix("s,v,1,0.000,1,1,0,0,0,1.000000,1.000,1.000,1.0000,"))
        // … in_flight, queue_depth, nine counters, retry_amplification, concurrency_limit, authz_denials, tls_handshakes.
        #expect(rows[0].hasSuffix(",1,0,0,0,0,0,0,0,0,0,0,,,0,0"))
        #expect(rows[1].hasPrefix("s,v,1,1.000,0,0,0,0,0,,1.000,0.000,,,,,,,,1,0"))
        #expect(rows[2].hasPrefix("s,v,1,2.000,1,0,1,0,0,0.000000,0.000,0.000,1000.0000,"))
        let summary = recorder.summaryRow(unfinished: 0)
        #expect(summary.requests == 1 && summary.failed == 1 && summary.ok == 0)
        #expect(summary.attemptsPerRequest == 2)
        #expect(summary.offeredRPS == 0.5)
    }
}
