// The answer's small Markdown subset, rendered with DOM APIs and text nodes only: paragraphs,
// `- ` lists, **bold**, *italic*, `code` and citation markers [n]. Answer text comes from the
// server (and, through quotes, from uploaded documents), so nothing here ever parses HTML: no
// images, no links, no raw markup; anything outside the subset stays literal text.

const LIST_ITEM = /^\s*[-*•]\s+(.*)$/;
// Order matters: code spans are literal, so they are matched before emphasis.
const INLINE = /`([^`\n]+)`|\*\*(?=\S)([\s\S]*?\S)\*\*|\*(?=[^\s*])([^*\n]*?[^\s*])\*|\[(\d{1,3})\]/g;

/**
 * Replace `container`'s children with `text` rendered.
 * `cite(n)` returns the element for marker [n], or null to leave "[n]" as text.
 */
export function renderMarkdown(container, text, cite = () => null) {
  const fragment = document.createDocumentFragment();
  for (const block of blocks(text)) {
    if (block.type === 'list') {
      const ul = document.createElement('ul');
      for (const item of block.items) {
        const li = document.createElement('li');
        inline(li, item, cite);
        ul.append(li);
      }
      fragment.append(ul);
    } else {
      const p = document.createElement('p');
      block.lines.forEach((line, i) => {
        if (i > 0) p.append(document.createElement('br'));
        inline(p, line, cite);
      });
      fragment.append(p);
    }
  }
  container.replaceChildren(fragment);
}

/** Paragraphs (runs of non-blank lines) and lists (runs of `- ` lines). */
function blocks(text) {
  const out = [];
  let current = null;
  for (const raw of String(text).replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.replace(/\s+$/, '');
    if (line.trim() === '') {
      current = null;
      continue;
    }
    const item = LIST_ITEM.exec(line);
    if (item) {
      if (current?.type !== 'list') out.push((current = { type: 'list', items: [] }));
      current.items.push(item[1]);
    } else if (current?.type === 'list' && /^\s{2,}\S/.test(raw)) {
      // An indented line continues the previous list item.
      current.items[current.items.length - 1] += ` ${line.trim()}`;
    } else {
      if (current?.type !== 'para') out.push((current = { type: 'para', lines: [] }));
      current.lines.push(line);
    }
  }
  return out;
}

function inline(parent, text, cite, depth = 0) {
  let last = 0;
  INLINE.lastIndex = 0;
  const matches = [...text.matchAll(INLINE)];
  for (const m of matches) {
    if (m.index > last) parent.append(document.createTextNode(text.slice(last, m.index)));
    last = m.index + m[0].length;
    const [whole, code, bold, italic, n] = m;
    if (code !== undefined) {
      const el = document.createElement('code');
      el.textContent = code;
      parent.append(el);
    } else if (bold !== undefined || italic !== undefined) {
      const el = document.createElement(bold !== undefined ? 'strong' : 'em');
      // Nested emphasis is rare in answers; a depth bound keeps hostile input cheap.
      if (depth < 3) inline(el, bold ?? italic, cite, depth + 1);
      else el.textContent = bold ?? italic;
      parent.append(el);
    } else {
      const chip = cite(Number(n));
      parent.append(chip ?? document.createTextNode(whole));
    }
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}
