// msgpackr requires 'msgpackr-extract' inside try/catch and uses its pure-JS
// decoder when that fails. cairn does not ship the native extractor (see package.json).
throw new Error('msgpackr-extract is not installed in cairn: msgpackr uses its JavaScript decoder');
