// The page's two languages, Bahasa Malaysia ("ms") and English ("en"), and the machinery that
// switches every visible string at once without a reload.
//
// An element whose text is translatable records its key (and arguments) in data attributes:
// `tr(el, key, args)` sets them and the text; `setLang` walks the document and re-renders each one,
// so content built after load (answers, statuses, the document list) switches as well.

const DICT = {
  ms: {
    sign_in_title: 'Log masuk ke Tanya',
    sign_in_body: 'Dokumen di sini hanya untuk mereka yang dibenarkan. Log masuk untuk bertanya.',
    user_name: 'Nama pengguna',
    password: 'Kata laluan',
    sign_in: 'Log masuk',
    sign_out: 'Log keluar',
    signed_in_as: 'Log masuk sebagai {name}',
    sign_in_bad: 'Nama pengguna atau kata laluan salah.',
    sign_in_throttled: 'Terlalu banyak cubaan gagal. Cuba lagi selepas {s} saat.',
    sign_in_failed: 'Tidak dapat log masuk: {message}',
    people: 'Pengguna',
    people_title: 'Pengguna dan token',
    people_subtitle: 'Setiap orang melihat dokumen yang berkongsi kumpulan dengan mereka. Pentadbir melihat semua.',
    people_users: 'Pengguna',
    people_add: 'Tambah pengguna',
    people_password_new: 'Kata laluan (sekurang-kurangnya 10 aksara)',
    people_role: 'Peranan',
    people_role_of: 'Peranan {name}',
    people_groups: 'Kumpulan (dipisahkan koma)',
    people_groups_of: 'Kumpulan {name}',
    people_add_button: 'Tambah',
    people_may_sign_in: 'Boleh log masuk',
    people_save: 'Simpan',
    people_remove: 'Buang',
    people_remove_confirm: 'Buang pengguna {name}? Perbualan mereka juga dipadam.',
    people_added: 'Pengguna ditambah.',
    people_saved: 'Disimpan.',
    people_removed: 'Pengguna dibuang.',
    people_failed: 'Tidak berjaya: {message}',
    people_tokens: 'Token API',
    people_token_label: 'Label token baharu',
    people_token_create: 'Buat token',
    people_token_once: 'Salin token ini sekarang; ia tidak akan dipaparkan lagi:',
    people_revoke: 'Batalkan',
    people_access: 'Siapa boleh melihat apa',
    people_access_hint: 'Dokumen dilihat oleh orang dalam kumpulannya. Dokumen tanpa kumpulan dilihat oleh pentadbir sahaja. Menukar kumpulan tidak mengindeks semula apa-apa.',
    people_collections: 'Koleksi',
    people_collections_none: 'Belum ada koleksi.',
    people_collection_count: '{count} dokumen',
    people_collection_groups_of: 'Kumpulan yang boleh melihat koleksi {name}',
    people_documents: 'Dokumen',
    people_doc_filter: 'Tapis dokumen',
    people_doc_groups_of: 'Kumpulan yang boleh melihat {name}',
    people_admins_only: 'pentadbir sahaja',
    people_more_documents: '{count} lagi: tapis untuk mencari.',
    role_reader: 'Pembaca',
    role_editor: 'Penyunting',
    role_admin: 'Pentadbir',
    collection_label: 'Koleksi',
    collection_all: 'Semua dokumen',
    history_heading: 'Perbualan anda',
    history_empty: 'Belum ada perbualan. Soalan anda disimpan di sini.',
    history_failed: 'Senarai perbualan tidak dapat dimuatkan.',
    history_rename: 'Namakan semula',
    history_export: 'Muat turun (Markdown)',
    history_delete: 'Padam perbualan',
    history_delete_confirm: 'Padam perbualan "{title}"?',
    restored_at: 'disimpan {when}',
    err_withheld: 'Jawapan ini memetik dokumen yang tidak lagi boleh anda lihat, jadi ia tidak dipaparkan.',
    page_title: 'Tanya — soal jawab dokumen anda',
    tagline: 'Tanya dokumen anda. Peribadi, di luar talian.',
    skip_to_question: 'Langkau ke soalan',
    language: 'Bahasa antara muka',
    conversation: 'Perbualan',
    new_conversation: 'Perbualan baharu',
    empty_title: 'Tanya apa sahaja tentang dokumen anda',
    empty_body:
      'Jawapan dipetik daripada dokumen anda, lengkap dengan nama dokumen dan nombor halaman. Tiada apa-apa yang keluar dari komputer ini.',
    tip_lang: 'Tanya dalam Bahasa Malaysia atau bahasa Inggeris; jawapan mengikut bahasa soalan.',
    tip_cite: 'Klik nombor rujukan dalam jawapan untuk melihat petikan dalam dokumen asal.',
    tip_upload: 'Tambah dokumen di panel Dokumen: PDF, DOCX, XLSX, PPTX, CSV, e-mel (.eml), HTML, Markdown atau teks.',
    question_label: 'Soalan anda',
    question_placeholder: 'Contoh: Berapa hari cuti tahunan selepas 3 tahun berkhidmat?',
    question_hint: 'Enter untuk hantar, Shift+Enter untuk baris baharu.',
    followup_hint: 'Soalan susulan akan mengambil kira soalan sebelumnya.',
    ask: 'Tanya',
    stop: 'Henti',
    mode_legend: 'Jenis jawapan',
    mode_extractive: 'Petikan terus',
    mode_generative: 'Dijana oleh model',
    generative_unavailable: 'Tiada model bahasa dipasang pada pelayan ini.',
    you: 'Anda',
    answer_label: 'Jawapan',
    status_searching: 'Mencari…',
    status_thinking: 'Model sedang berfikir…',
    status_composing: 'Memilih petikan…',
    status_writing: 'Menulis jawapan…',
    elapsed: '{s} s',
    stopped: 'Dihentikan.',
    abstained_title: 'Tiada jawapan dalam dokumen',
    fallback_title: 'Pelayan model tidak menjawab, jadi jawapan ini dipetik terus daripada dokumen.',
    no_citations: 'Jawapan ini tidak merujuk mana-mana petikan. Semak sumber di bawah sebelum bergantung padanya.',
    sources: 'Sumber ({n})',
    no_sources: 'Tiada petikan yang berkaitan ditemui.',
    closest_passages: 'Petikan terdekat, yang tidak menjawab soalan ini ({n})',
    more_sources: 'Papar {n} sumber lagi',
    page_n: 'halaman {n}',
    cite_label: 'Rujukan {n}: {title}, halaman {page}',
    cite_label_nopage: 'Rujukan {n}: {title}',
    cited_as: 'dirujuk [{n}]',
    open_passage: 'Buka petikan {rank}: {title}',
    ttft: 'token pertama selepas {s} s',
    total_time: 'selesai dalam {s} s',
    err_bad_request: 'Permintaan tidak dapat diproses.',
    err_not_ready: 'Model masih dimuatkan. Sila cuba lagi sebentar lagi.',
    err_not_found: 'Tidak ditemui.',
    err_payload_too_large: 'Fail terlalu besar.',
    err_unsupported_media_type: 'Jenis fail tidak disokong.',
    err_host_not_allowed: 'Pelayan menolak alamat halaman ini.',
    err_cross_origin: 'Pelayan menolak permintaan dari laman lain.',
    err_internal: 'Ralat dalaman pelayan.',
    err_network: 'Tidak dapat menghubungi pelayan Tanya.',
    err_stream_cut: 'Sambungan terputus sebelum jawapan selesai.',
    err_generic: 'Sesuatu tidak kena.',
    server_says: 'Mesej pelayan: {message}',
    docs_heading: 'Dokumen',
    docs_count: '{n} dokumen',
    docs_privacy: 'Fail disimpan dan diproses dalam komputer ini sahaja.',
    drop_title: 'Seret dan lepas fail di sini',
    drop_or: 'atau',
    choose_files: 'Pilih fail…',
    upload_hint: 'PDF, DOCX, XLSX, PPTX, CSV, e-mel (.eml), HTML, Markdown atau teks · maksimum {mb} MB setiap fail',
    upload_hint_nolimit: 'PDF, DOCX, XLSX, PPTX, CSV, e-mel (.eml), HTML, Markdown atau teks',
    uploads_label: 'Muat naik',
    clear_finished: 'Kosongkan',
    up_waiting: 'Menunggu giliran untuk dimuat naik…',
    up_uploading: 'Memuat naik… {pct}%',
    up_queued: 'Dalam giliran untuk diindeks…',
    up_indexing: 'Sedang diindeks…',
    up_indexed: 'Sedia: {n} petikan diindeks.',
    up_rejected: 'Ditolak: {message}',
    up_too_large: 'Terlalu besar (had {mb} MB).',
    up_unsupported: 'Jenis fail tidak disokong.',
    up_failed: 'Gagal dimuat naik.',
    upload_progress_label: 'Kemajuan muat naik {name}',
    status_queued: 'Dalam giliran',
    status_indexing: 'Sedang diindeks',
    status_indexed: 'Diindeks',
    status_rejected: 'Ditolak',
    doc_pages: '{n} halaman',
    doc_chunks: '{n} petikan',
    doc_uploaded: 'dimuat naik',
    delete: 'Padam',
    delete_label: 'Padam {name}',
    confirm_delete: 'Padam dokumen ini daripada indeks?',
    confirm_yes: 'Ya, padam',
    cancel: 'Batal',
    deleting: 'Memadam…',
    delete_failed: 'Gagal memadam.',
    docs_empty: 'Belum ada dokumen. Tambah fail di atas.',
    docs_loading: 'Memuatkan senarai dokumen…',
    docs_load_failed: 'Senarai dokumen tidak dapat dimuatkan.',
    open_document: 'Buka {name}',
    viewer_close: 'Tutup',
    viewer_prev: 'Halaman sebelumnya',
    viewer_next: 'Halaman seterusnya',
    prev_short: 'Sebelum',
    next_short: 'Seterus',
    viewer_page: 'Halaman {n} daripada {total}',
    viewer_page_only: 'Halaman {n}',
    viewer_show_text: 'Papar teks',
    viewer_show_pdf: 'Papar PDF',
    viewer_loading: 'Memuatkan dokumen…',
    viewer_pdf_unavailable: 'Pemapar PDF tidak tersedia; teks dokumen dipaparkan.',
    viewer_quote: 'Petikan yang dirujuk',
    viewer_text_label: 'Teks dokumen',
    viewer_load_failed: 'Dokumen tidak dapat dimuatkan.',
    viewer_not_on_page: 'Petikan tidak dikenal pasti pada halaman ini.',
    footer: 'Tanya {version} · semua pemprosesan berlaku dalam komputer ini.',
    footer_plain: 'Semua pemprosesan berlaku dalam komputer ini.',
  },
  en: {
    sign_in_title: 'Sign in to Tanya',
    sign_in_body: 'The documents here are for the people allowed to see them. Sign in to ask.',
    user_name: 'User name',
    password: 'Password',
    sign_in: 'Sign in',
    sign_out: 'Sign out',
    signed_in_as: 'Signed in as {name}',
    sign_in_bad: 'Wrong user name or password.',
    sign_in_throttled: 'Too many failed attempts. Try again in {s} seconds.',
    sign_in_failed: 'Could not sign in: {message}',
    people: 'People',
    people_title: 'People and tokens',
    people_subtitle: 'Everyone sees the documents that share a group with them. Administrators see everything.',
    people_users: 'People',
    people_add: 'Add a person',
    people_password_new: 'Password (at least 10 characters)',
    people_role: 'Role',
    people_role_of: 'Role of {name}',
    people_groups: 'Groups (comma-separated)',
    people_groups_of: 'Groups of {name}',
    people_add_button: 'Add',
    people_may_sign_in: 'May sign in',
    people_save: 'Save',
    people_remove: 'Remove',
    people_remove_confirm: 'Remove {name}? Their conversations are deleted too.',
    people_added: 'Added.',
    people_saved: 'Saved.',
    people_removed: 'Removed.',
    people_failed: 'That did not work: {message}',
    people_tokens: 'API tokens',
    people_token_label: 'Label of a new token',
    people_token_create: 'Make a token',
    people_token_once: 'Copy this token now; it will not be shown again:',
    people_revoke: 'Revoke',
    people_access: 'Who may see what',
    people_access_hint: 'A document is seen by the people in its groups. A document with no group is seen by administrators only. Changing groups re-indexes nothing.',
    people_collections: 'Collections',
    people_collections_none: 'No collections yet.',
    people_collection_count: '{count} documents',
    people_collection_groups_of: 'Groups that may see the collection {name}',
    people_documents: 'Documents',
    people_doc_filter: 'Filter documents',
    people_doc_groups_of: 'Groups that may see {name}',
    people_admins_only: 'administrators only',
    people_more_documents: '{count} more: filter to find them.',
    role_reader: 'Reader',
    role_editor: 'Editor',
    role_admin: 'Administrator',
    collection_label: 'Collection',
    collection_all: 'All documents',
    history_heading: 'Your conversations',
    history_empty: 'No conversations yet. Your questions are kept here.',
    history_failed: 'Your conversations could not be loaded.',
    history_rename: 'Rename',
    history_export: 'Download (Markdown)',
    history_delete: 'Delete conversation',
    history_delete_confirm: 'Delete the conversation "{title}"?',
    restored_at: 'saved {when}',
    err_withheld: 'This answer quoted a document you can no longer see, so it is not shown.',
    page_title: 'Tanya — ask your documents',
    tagline: 'Ask your documents. Private, offline.',
    skip_to_question: 'Skip to the question',
    language: 'Interface language',
    conversation: 'Conversation',
    new_conversation: 'New conversation',
    empty_title: 'Ask anything about your documents',
    empty_body:
      'Answers quote your documents and name the document and page they come from. Nothing leaves this computer.',
    tip_lang: 'Ask in Bahasa Malaysia or English; the answer follows the language of the question.',
    tip_cite: 'Click a reference number in an answer to see the quote in the original document.',
    tip_upload: 'Add documents in the Documents panel: PDF, DOCX, XLSX, PPTX, CSV, email (.eml), HTML, Markdown or text.',
    question_label: 'Your question',
    question_placeholder: 'For example: How many days of annual leave do I get after 3 years of service?',
    question_hint: 'Enter to send, Shift+Enter for a new line.',
    followup_hint: 'A follow-up question takes the previous question into account.',
    ask: 'Ask',
    stop: 'Stop',
    mode_legend: 'Answer type',
    mode_extractive: 'Direct quotes',
    mode_generative: 'Generated by the model',
    generative_unavailable: 'No language model is installed on this server.',
    you: 'You',
    answer_label: 'Answer',
    status_searching: 'Searching…',
    status_thinking: 'The model is thinking…',
    status_composing: 'Choosing quotes…',
    status_writing: 'Writing the answer…',
    elapsed: '{s} s',
    stopped: 'Stopped.',
    abstained_title: 'Not found in the documents',
    fallback_title: 'The model server did not answer, so this answer is quoted from the documents.',
    no_citations: 'This answer cites no passage. Check the sources below before relying on it.',
    sources: 'Sources ({n})',
    no_sources: 'No relevant passages were found.',
    closest_passages: 'Closest passages, which do not answer this ({n})',
    more_sources: 'Show {n} more sources',
    more_sources_one: 'Show 1 more source',
    page_n: 'page {n}',
    cite_label: 'Reference {n}: {title}, page {page}',
    cite_label_nopage: 'Reference {n}: {title}',
    cited_as: 'cited [{n}]',
    open_passage: 'Open passage {rank}: {title}',
    ttft: 'first token after {s} s',
    total_time: 'done in {s} s',
    err_bad_request: 'The request could not be processed.',
    err_not_ready: 'The models are still loading. Please try again in a moment.',
    err_not_found: 'Not found.',
    err_payload_too_large: 'The file is too large.',
    err_unsupported_media_type: 'Unsupported file type.',
    err_host_not_allowed: 'The server refused this page’s address.',
    err_cross_origin: 'The server refused a request from another site.',
    err_internal: 'Internal server error.',
    err_network: 'Cannot reach the Tanya server.',
    err_stream_cut: 'The connection closed before the answer was complete.',
    err_generic: 'Something went wrong.',
    server_says: 'Server message: {message}',
    docs_heading: 'Documents',
    docs_count: '{n} documents',
    docs_count_one: '1 document',
    docs_privacy: 'Files are stored and processed on this computer only.',
    drop_title: 'Drag and drop files here',
    drop_or: 'or',
    choose_files: 'Choose files…',
    upload_hint: 'PDF, DOCX, XLSX, PPTX, CSV, email (.eml), HTML, Markdown or text · up to {mb} MB per file',
    upload_hint_nolimit: 'PDF, DOCX, XLSX, PPTX, CSV, email (.eml), HTML, Markdown or text',
    uploads_label: 'Uploads',
    clear_finished: 'Clear',
    up_waiting: 'Waiting to upload…',
    up_uploading: 'Uploading… {pct}%',
    up_queued: 'Queued for indexing…',
    up_indexing: 'Indexing…',
    up_indexed: 'Ready: {n} passages indexed.',
    up_indexed_one: 'Ready: 1 passage indexed.',
    up_rejected: 'Rejected: {message}',
    up_too_large: 'Too large (limit {mb} MB).',
    up_unsupported: 'Unsupported file type.',
    up_failed: 'Upload failed.',
    upload_progress_label: 'Upload progress of {name}',
    status_queued: 'Queued',
    status_indexing: 'Indexing',
    status_indexed: 'Indexed',
    status_rejected: 'Rejected',
    doc_pages: '{n} pages',
    doc_pages_one: '1 page',
    doc_chunks: '{n} passages',
    doc_chunks_one: '1 passage',
    doc_uploaded: 'uploaded',
    delete: 'Delete',
    delete_label: 'Delete {name}',
    confirm_delete: 'Remove this document from the index?',
    confirm_yes: 'Yes, delete',
    cancel: 'Cancel',
    deleting: 'Deleting…',
    delete_failed: 'Could not delete.',
    docs_empty: 'No documents yet. Add files above.',
    docs_loading: 'Loading the document list…',
    docs_load_failed: 'The document list could not be loaded.',
    open_document: 'Open {name}',
    viewer_close: 'Close',
    viewer_prev: 'Previous page',
    viewer_next: 'Next page',
    prev_short: 'Previous',
    next_short: 'Next',
    viewer_page: 'Page {n} of {total}',
    viewer_page_only: 'Page {n}',
    viewer_show_text: 'Show text',
    viewer_show_pdf: 'Show PDF',
    viewer_loading: 'Loading the document…',
    viewer_pdf_unavailable: 'The PDF viewer is unavailable; showing the document’s text.',
    viewer_quote: 'Cited quote',
    viewer_text_label: 'Document text',
    viewer_load_failed: 'The document could not be loaded.',
    viewer_not_on_page: 'The quote could not be located on this page.',
    footer: 'Tanya {version} · all processing happens on this computer.',
    footer_plain: 'All processing happens on this computer.',
  },
};

export const LANGS = Object.freeze(['ms', 'en']);
const STORAGE_KEY = 'tanya.lang';
let current = 'ms';
const listeners = new Set();

/** The stored choice, else the first of the browser's languages we speak, else English. */
export function detectLang() {
  try {
    const stored = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(stored)) return stored;
  } catch {
    // Storage can be disabled; fall through to the browser's preference.
  }
  const prefs = navigator.languages?.length ? navigator.languages : [navigator.language || ''];
  for (const tag of prefs) {
    const primary = String(tag).toLowerCase().split('-')[0];
    if (primary === 'ms' || primary === 'id') return 'ms';
    if (primary === 'en') return 'en';
  }
  return 'en';
}

export function getLang() {
  return current;
}

/** The string for `key` in the current language, `{name}` placeholders filled from `args`. */
export function t(key, args = {}) {
  const dict = DICT[current];
  let template = dict[key];
  if (args.n === 1 && dict[`${key}_one`] !== undefined) template = dict[`${key}_one`];
  if (template === undefined) template = DICT.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (m, name) => (name in args ? String(args[name]) : m));
}

/** Set `el`'s text to `t(key, args)` and remember both so a language switch re-renders it. */
export function tr(el, key, args) {
  el.dataset.i18n = key;
  if (args) el.dataset.i18nArgs = JSON.stringify(args);
  else delete el.dataset.i18nArgs;
  el.textContent = t(key, args);
  return el;
}

/** Like `tr` for an attribute (aria-label, title, placeholder). */
export function trAttr(el, attr, key, args) {
  const map = el.dataset.i18nAttr ? JSON.parse(el.dataset.i18nAttr) : {};
  map[attr] = args ? [key, args] : [key];
  el.dataset.i18nAttr = JSON.stringify(map);
  el.setAttribute(attr, t(key, args));
  return el;
}

/** Re-render every translatable text and attribute under `root`. */
export function translateAll(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    const args = el.dataset.i18nArgs ? JSON.parse(el.dataset.i18nArgs) : undefined;
    el.textContent = t(el.dataset.i18n, args);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const [attr, [key, args]] of Object.entries(JSON.parse(el.dataset.i18nAttr))) {
      el.setAttribute(attr, t(key, args));
    }
  }
  document.title = t('page_title');
}

export function setLang(lang, { persist = true } = {}) {
  if (!LANGS.includes(lang)) return;
  current = lang;
  document.documentElement.lang = lang;
  if (persist) {
    try {
      localStorage.setItem(STORAGE_KEY, lang);
    } catch {
      // Not persisted: the choice still holds for this page.
    }
  }
  translateAll(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
}
