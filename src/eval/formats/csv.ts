/**
 * A small RFC 4180 CSV reader: comma-separated fields, fields in double quotes may hold commas,
 * newlines and doubled quotes (""). Each record reports the line it starts on so errors can
 * point at it. CRLF and LF line ends are both accepted.
 */
import { InputError } from '../../util/errors.ts';

/** One CSV record and the 1-based line it starts on. */
export interface CsvRecord {
  line: number;
  fields: string[];
}

/** Parses CSV text. `file` names the source in errors (an unterminated quote names its opening line). */
export function parseCsv(text: string, file: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  let i = 0, line = 1;
  const n = text.length;
  if (text.charCodeAt(0) === 0xfeff) i = 1; // byte-order mark
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let endOfRecord = false;
    while (!endOfRecord) {
      if (text[i] === '"') {
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new InputError(`${file}:${quoteLine}: unterminated quoted field (a '"' opened on this line is never closed)`);
          const c = text[i]!;
          if (c === '"') {
            if (text[i + 1] === '"') { field += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r')
          throw new InputError(`${file}:${line}: unexpected character ${JSON.stringify(text[i])} after a closing quote (expected ',' or end of line)`);
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          if (text[i] === '"') throw new InputError(`${file}:${line}: stray '"' inside an unquoted field (quote the whole field and double inner quotes)`);
          field += text[i];
          i++;
        }
      }
      fields.push(field);
      field = '';
      if (i >= n) { endOfRecord = true; break; }
      const c = text[i]!;
      if (c === ',') { i++; continue; }
      if (c === '\r') i++;
      if (text[i] === '\n') i++;
      line++;
      endOfRecord = true;
    }
    // Skip blank lines (a record of one empty field).
    if (!(fields.length === 1 && fields[0] === '')) out.push({ line: start, fields });
  }
  return out;
}
