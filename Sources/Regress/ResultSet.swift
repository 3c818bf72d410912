//===----------------------------------------------------------------------===//
// meshsim — Regress
//===----------------------------------------------------------------------===//

import Foundation

/// Why a results folder cannot be compared.
public struct RegressInputError: Error, CustomStringConvertible, Equatable {
    /// The file (or folder) at fault.
    public var path: String
    /// The line, when the problem is on one.
    public var line: Int?
    /// What is wrong.
    public var message: String

    /// Creates an error.
    public init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String { path + (line.map { ":\($0)" } ?? "") + ": " + message }
}

/// One variant of one scenario in a results folder: its per-seed summary rows and its per-window rows.
public struct VariantResults: Sendable {
    /// `sim` or `live` (the `mode` column).
    public var mode: String
    /// Each seed's summary metrics, by column name (empty cells left out).
    public var seeds: [UInt64: [String: Double]] = [:]
    /// Each seed's time-series windows, in order, by column name (empty cells left out).
    public var windows: [UInt64: [[String: Double]]] = [:]
}

/// The results of one folder as `meshsim run`, `live` or `load` wrote them: `summary.csv` (required) and
/// `timeseries.csv` (optional), in the folder itself or in its subfolders (one per scenario, as in
/// `results/baseline/`).
public struct ResultSet: Sendable {
    /// The results by scenario, then variant.
    public var scenarios: [String: [String: VariantResults]] = [:]
    /// The summary files read, for messages.
    public var files: [String] = []

    /// The most bytes a results file may have (a larger one is refused, not read).
    public static let maxFileBytes = 512 << 20

    /// Reads `directory`: its `summary.csv`, or else the `summary.csv` of each subfolder (one level).
    ///
    /// - Throws: ``RegressInputError`` for a missing folder, no summary, or a malformed file (with its line).
    public static func load(_ directory: String) throws -> ResultSet {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else { throw RegressInputError(path: directory, message: "not a folder") }
        var set = ResultSet()
        if FileManager.default.fileExists(atPath: directory + "/summary.csv") {
            try set.read(folder: directory)
        } else {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            for entry in entries.sorted()
            where FileManager.default.fileExists(atPath: directory + "/" + entry + "/summary.csv") {
                try set.read(folder: directory + "/" + entry)
            }
        }
        guard !set.files.isEmpty else {
            throw RegressInputError(
                path: directory,
                message: "no summary.csv in the folder or its subfolders (give a folder `meshsim run` wrote)"
            )
        }
        return set
    }

    /// Reads one folder's `summary.csv` and, if present, `timeseries.csv`.
    mutating func read(folder: String) throws {
        let summaryPath = folder + "/summary.csv"
        let summary = try CSVTable(path: summaryPath)
        for column in ["scenario", "variant", "seed"] where summary.index[column] == nil {
            throw RegressInputError(path: summaryPath, line: 1, message: "no '\(column)' column")
        }
        for (r, row) in summary.rows.enumerated() {
            let line = r + 2
            let (scenario, variant) = (row[summary.index["scenario"]!], row[summary.index["variant"]!])
            guard let seed = UInt64(row[summary.index["seed"]!]) else {
                throw RegressInputError(
                    path: summaryPath,
                    line: line,
                    message: "seed '\(row[summary.index["seed"]!])' is not a whole number"
                )
            }
            let mode = summary.index["mode"].map { row[$0] } ?? "sim"
            var results = scenarios[scenario, default: [:]][variant] ?? VariantResults(mode: mode)
            if results.mode != mode {
                throw RegressInputError(
                    path: summaryPath,
                    line: line,
                    message: "variant \(variant) mixes modes \(results.mode) and \(mode)"
                )
            }
            guard results.seeds[seed] == nil else {
                throw RegressInputError(
                    path: summaryPath,
                    line: line,
                    message: "a second row for \(scenario)/\(variant) seed \(seed)"
                )
            }
            results.seeds[seed] = try summary.numbers(row, path: summaryPath, line: line)
            scenarios[scenario, default: [:]][variant] = results
        }
        files.append(summaryPath)
        let seriesPath = folder + "/timeseries.csv"
        guard FileManager.default.fileExists(atPath: seriesPath) else { return }
        let series = try CSVTable(path: seriesPath)
        guard let s = series.index["scenario"], let v = series.index["variant"], let d = series.index["seed"] else {
            throw RegressInputError(path: seriesPath, line: 1, message: "no scenario, variant and seed columns")
        }
        for (r, row) in series.rows.enumerated() {
            guard let seed = UInt64(row[d]) else {
                throw RegressInputError(
                    path: seriesPath,
                    line: r + 2,
                    message: "seed '\(row[d])' is not a whole number"
                )
            }
            guard scenarios[row[s]]?[row[v]] != nil else { continue }  // a variant without a summary row
            let values = try series.numbers(row, path: seriesPath, line: r + 2)
            scenarios[row[s]]![row[v]]!.windows[seed, default: []].append(values)
        }
    }
}

/// A CSV file as `meshsim` writes it (RFC 4180: commas, double-quoted fields with doubled quotes), by header.
struct CSVTable {
    /// Column positions by name.
    var index: [String: Int] = [:]
    /// The header.
    var header: [String] = []
    /// The rows after the header, each as many cells as the header.
    var rows: [[String]] = []

    init(path: String) throws {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            (attributes[.type] as? FileAttributeType) == .typeRegular
        else { throw RegressInputError(path: path, message: "not a readable file") }
        if let size = attributes[.size] as? Int, size > ResultSet.maxFileBytes {
            throw RegressInputError(path: path, message: "\(size) bytes; at most \(ResultSet.maxFileBytes) are read")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw RegressInputError(path: path, message: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw RegressInputError(path: path, message: "not UTF-8 text")
        }
        let records = try Self.parse(text, path: path)
        guard let header = records.first, !header.isEmpty, header != [""] else {
            throw RegressInputError(path: path, line: 1, message: "empty: no header")
        }
        self.header = header
        for (i, name) in header.enumerated() {
            guard index[name] == nil else {
                throw RegressInputError(path: path, line: 1, message: "column '\(name)' appears twice")
            }
            index[name] = i
        }
        for (r, record) in records.dropFirst().enumerated() where record != [""] {
            guard record.count == header.count else {
                throw RegressInputError(
                    path: path,
                    line: r + 2,
                    message: "\(record.count) cells; the header has \(header.count)"
                )
            }
            rows.append(record)
        }
    }

    /// The numeric cells of `row` by column name; an empty cell is left out, text in a metric column is an error.
    func numbers(_ row: [String], path: String, line: Int) throws -> [String: Double] {
        var values: [String: Double] = [:]
        for (i, name) in header.enumerated() where !["scenario", "variant", "seed", "mode"].contains(name) {
            let cell = row[i]
            if cell.isEmpty { continue }
            guard let value = Double(cell), value.isFinite else {
                throw RegressInputError(path: path, line: line, message: "\(name): '\(cell)' is not a number")
            }
            values[name] = value
        }
        return values
    }

    /// Splits CSV text into records of fields.
    static func parse(_ text: String, path: String) throws -> [[String]] {
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var atFieldStart = true
        var line = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = iterator.next()
                    if next == "\"" {
                        field.unicodeScalars.append("\"")
                    } else {
                        quoted = false
                        pending = next
                    }
                } else {
                    if c == "\n" { line += 1 }
                    field.unicodeScalars.append(c)
                }
                continue
            }
            switch c {
            case "\"" where atFieldStart:
                quoted = true
                atFieldStart = false
            case "\"":
                throw RegressInputError(path: path, line: line, message: "a quote inside an unquoted field")
            case ",":
                record.append(field)
                field = ""
                atFieldStart = true
            case "\r":
                break
            case "\n":
                record.append(field)
                records.append(record)
                record = []
                field = ""
                atFieldStart = true
                line += 1
            default:
                field.unicodeScalars.append(c)
                atFieldStart = false
            }
        }
        if quoted { throw RegressInputError(path: path, line: line, message: "a quoted field is not closed") }
        if !field.isEmpty || !record.isEmpty {
            record.append(field)
            records.append(record)
        }
        return records
    }
}
