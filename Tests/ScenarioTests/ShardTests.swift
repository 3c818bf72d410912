import Foundation
import Runner
import Scenario
import Testing

/// `run --shard I/N` and `merge`: the shards of a run put back together, byte for byte.
@Suite("Shards: split a run, merge it back")
struct ShardTests {
    static let scenario = minimal(
        """
        seeds: 3
        sweep:
          rate: {path: clients.users.rate, values: [30, 60]}
          balancer: {path: clients.users.balancer, values: [random, least_request]}
        """,
        service: "    replicas: 3",
        client: "    retries: 1"
    ).replacingOccurrences(of: "duration: 10s", with: "duration: 3s")

    /// A new empty temporary folder.
    static func folder(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "meshsim-shards-\(getpid())-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs every shard of `count` into `root/I` and returns their folders.
    static func shards(_ scenario: Scenario, count: Int, root: String, jobs: Int = 1) throws -> [String] {
        try (0..<count).map { index in
            let experiment = Experiment.run(scenario, jobs: jobs, shard: Shard(index: index, count: count))
            let directory = root + "/\(index)"
            try experiment.writeShard(to: directory)
            return directory
        }
    }

    static func read(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test("I/N is read strictly", arguments: ["0/1", "3/4", "0/100000"])
    func parsing(text: String) throws {
        let shard = try #require(Shard(parsing: text))
        #expect(shard.description == text)
    }

    @Test(
        "malformed shards are refused",
        arguments: ["", "1", "4/4", "-1/4", "0/0", "1/2/3", " 0/2", "0/100001", "a/b", "0/"]
    )
    func malformed(text: String) {
        #expect(Shard(parsing: text) == nil)
    }

    @Test("every replication is in exactly one shard, dealt round-robin", arguments: [1, 2, 5, 12, 13])
    func partition(count: Int) {
        var owners = Array(repeating: 0, count: 40)
        for index in 0..<count {
            let shard = Shard(index: index, count: count)!
            for unit in owners.indices where shard.owns(unit: unit) { owners[unit] += 1 }
        }
        #expect(owners.allSatisfy { $0 == 1 })
    }

    @Test(
        "merged shards are byte-identical to the run in one process, for any number of shards",
        arguments: [1, 2, 5, 13]
    )
    func mergeIsIdentical(count: Int) throws {
        let scenario = try Scenario.parse(Self.scenario, file: "sharded.yaml")
        #expect(scenario.variants.count * scenario.seeds == 12)
        let whole = Experiment.run(scenario, jobs: 2)
        let root = Self.folder("n\(count)")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = try Self.shards(scenario, count: count, root: root, jobs: 2)
        // Given as the folder of shard folders, as a shared volume holds them.
        let merged = try ShardMerge.merge(try ShardMerge.shardFolders([root]))
        #expect(merged.shards == count)
        #expect(merged.summaryCSV == whole.summaryCSV)
        #expect(merged.timeseriesCSV == whole.timeseriesCSV)
        #expect(merged.comparisonCSV == whole.comparisonCSV)
        #expect(merged.sweepCSV == whole.sweepCSV)
        #expect(merged.runJSON.contains("\"shards\": \(count)"))
        #expect(merged.runJSON.contains("\"events\": \(whole.events)"))
        // 13 shards of 12 replications: the last one ran nothing and says so.
        if count == 13 {
            #expect(try Self.read(folders[12] + "/summary.csv").split(separator: "\n").count == 1)
        }
        let out = root + "/merged"
        try merged.write(to: out)
        for name in ["summary.csv", "timeseries.csv", "comparison.csv", "sweep.csv"] {
            let expected: String? =
                switch name {
                case "summary.csv": whole.summaryCSV
                case "timeseries.csv": whole.timeseriesCSV
                case "comparison.csv": whole.comparisonCSV
                default: whole.sweepCSV
                }
            #expect(try Self.read(out + "/" + name) == expected, "\(name)")
        }
    }

    @Test("shards that do not belong together, or are incomplete or changed, are refused with the folder named")
    func refusals() throws {
        let scenario = try Scenario.parse(Self.scenario, file: "sharded.yaml")
        let root = Self.folder("bad")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let folders = try Self.shards(scenario, count: 3, root: root)

        func refusal(_ folders: [String]) -> String? {
            do {
                _ = try ShardMerge.merge(folders)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(refusal(Array(folders.prefix(2)))?.contains("1 of 3 shards missing (2)") == true)
        #expect(refusal(folders + [folders[1]])?.contains("shard 1/3 is given twice") == true)

        // Another seed: the same scenario text, other settings.
        var reseeded = scenario
        reseeded.seed = 99
        let other = try Self.shards(reseeded, count: 3, root: root + "/other")
        #expect(refusal([folders[0], folders[1], other[2]])?.contains("other settings") == true)

        // Another split.
        let halves = try Self.shards(scenario, count: 2, root: root + "/halves")
        #expect(refusal([folders[0], halves[1]])?.contains("all shards must split the run the same way") == true)

        // Another scenario.
        let changed = try Scenario.parse(
            Self.scenario.replacingOccurrences(of: "retries: 1", with: "retries: 2"),
            file: "x.yaml"
        )
        let foreign = try Self.shards(changed, count: 3, root: root + "/foreign")
        #expect(refusal([folders[0], folders[1], foreign[2]])?.contains("ran scenario") == true)

        // A summary row edited by hand.
        let copy = root + "/copy"
        try FileManager.default.copyItem(atPath: folders[1], toPath: copy)
        let summary = try Self.read(copy + "/summary.csv")
        try (summary + "sharded,extra,1\n").write(toFile: copy + "/summary.csv", atomically: true, encoding: .utf8)
        #expect(refusal([folders[0], copy, folders[2]])?.contains("longer than shard.json says") == true)
        try String(summary.dropLast(10)).write(toFile: copy + "/summary.csv", atomically: true, encoding: .utf8)
        #expect(refusal([folders[0], copy, folders[2]])?.contains("shorter than shard.json says") == true)

        // Hostile records: a split too large to list, a negative row length.
        let recordText = try Self.read(folders[1] + "/shard.json")
        try recordText.replacingOccurrences(of: "\"shards\" : 3", with: "\"shards\" : 1000000000000000000")
            .write(toFile: copy + "/shard.json", atomically: true, encoding: .utf8)
        #expect(refusal([copy])?.contains("not a possible split") == true)
        let firstLength = try #require(recordText.range(of: #""summary_bytes" : \d+"#, options: .regularExpression))
        try recordText.replacingCharacters(in: firstLength, with: "\"summary_bytes\" : -50")
            .write(toFile: copy + "/shard.json", atomically: true, encoding: .utf8)
        try summary.write(toFile: copy + "/summary.csv", atomically: true, encoding: .utf8)
        #expect(refusal([folders[0], copy, folders[2]])?.contains("does not belong to shard") == true)

        // A record that is not one.
        try "{\"format\": 3}".write(toFile: copy + "/shard.json", atomically: true, encoding: .utf8)
        #expect(refusal([folders[0], copy, folders[2]])?.contains("not a meshsim shard record") == true)
        try "".write(toFile: copy + "/shard.json", atomically: true, encoding: .utf8)
        #expect(refusal([copy])?.contains("not a meshsim shard record") == true)

        // Folders without shards.
        #expect(throws: MergeError.self) { try ShardMerge.shardFolders([root + "/nonexistent"]) }
        let empty = Self.folder("empty")
        defer { try? FileManager.default.removeItem(atPath: empty) }
        do {
            _ = try ShardMerge.shardFolders([empty])
            Issue.record("an empty folder was taken for shards")
        } catch {
            #expect(error.description.contains("no shard.json in it or in its sub-folders"))
        }
    }
}
