/** A tiny XML well-formedness check for the plot tests: balanced tags, quoted attributes, known entities. */
export function parseXml(text: string): { root: string; elements: Map<string, number> } {
  const elements = new Map<string, number>();
  const stack: string[] = [];
  let root = '';
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<\?[^>]*\?>|<!--[\s\S]*?-->|([^<]+)/g;
  let pos = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index !== pos) throw new Error(`malformed markup at offset ${pos}: ${JSON.stringify(text.slice(pos, pos + 40))}`);
    pos = re.lastIndex;
    if (m[5] !== undefined) {
      if (stack.length === 0 && m[5].trim() !== '') throw new Error(`text outside the root element: ${JSON.stringify(m[5].slice(0, 40))}`);
      const bad = /&(?!(amp|lt|gt|quot|#\d+);)/.exec(m[5]);
      if (bad) throw new Error(`bare '&' in text at ${pos}`);
      continue;
    }
    if (m[2] === undefined) continue;
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      if (stack.length === 0) {
        if (root) throw new Error(`second root element <${name}>`);
        root = name!;
      }
      elements.set(name!, (elements.get(name!) ?? 0) + 1);
      if (!selfClose) stack.push(name!);
    }
  }
  if (pos !== text.length) throw new Error(`malformed markup at offset ${pos}`);
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}
