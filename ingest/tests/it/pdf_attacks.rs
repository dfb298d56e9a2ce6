//! Hand-built PDFs shaped to make pdf-extract recurse without end. A stack overflow would abort
//! this whole test binary, so passing at all is the main assertion.

use std::time::{Duration, Instant};

use lopdf::content::{Content, Operation};
use lopdf::{dictionary, Dictionary, Document, Object, ObjectId, Stream};
use tanya_ingest::{parse, Format, ParseError, ParseLimits};

/// A document whose pages are made by `pages`, given the pages node id and a font resource
/// dictionary; each returned dictionary becomes a page under the root `Pages` node.
fn build(pages: impl FnOnce(&mut Document, ObjectId, &Dictionary) -> Vec<Dictionary>) -> Vec<u8> {
    let mut doc = Document::with_version("1.5");
    let pages_id = doc.new_object_id();
    let font_id = doc.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
    });
    let fonts = dictionary! { "F1" => font_id };
    let kids: Vec<Object> = pages(&mut doc, pages_id, &fonts)
        .into_iter()
        .map(|page| doc.add_object(page).into())
        .collect();
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => kids, "Count" => count,
        }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut out = Vec::new();
    doc.save_to(&mut out).unwrap();
    out
}

fn ops(list: Vec<Operation>) -> Vec<u8> {
    Content { operations: list }.encode().unwrap()
}

fn text_ops(text: &str) -> Vec<u8> {
    ops(vec![
        Operation::new("BT", vec![]),
        Operation::new("Tf", vec!["F1".into(), 12.into()]),
        Operation::new("Td", vec![72.into(), 700.into()]),
        Operation::new("Tj", vec![Object::string_literal(text)]),
        Operation::new("ET", vec![]),
    ])
}

fn invoke(names: &[&str]) -> Vec<u8> {
    ops(names
        .iter()
        .map(|n| Operation::new("Do", vec![Object::Name(n.as_bytes().to_vec())]))
        .collect())
}

fn page(
    doc: &mut Document,
    parent: ObjectId,
    content: Vec<u8>,
    resources: Dictionary,
) -> Dictionary {
    let content_id = doc.add_object(Stream::new(dictionary! {}, content));
    dictionary! {
        "Type" => "Page",
        "Parent" => parent,
        "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        "Contents" => content_id,
        "Resources" => resources,
    }
}

fn form(content: Vec<u8>, resources: Option<Dictionary>) -> Stream {
    let mut dict = dictionary! {
        "Type" => "XObject", "Subtype" => "Form",
        "BBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
    };
    if let Some(r) = resources {
        dict.set("Resources", r);
    }
    Stream::new(dict, content)
}

fn quick(bytes: &[u8]) -> Result<String, String> {
    let started = Instant::now();
    let result = parse(Format::Pdf, bytes, &ParseLimits::default());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    result.map(|d| d.full_text()).map_err(|e| e.to_string())
}

#[test]
fn self_invoking_form_is_skipped_and_other_pages_kept() {
    let bytes = build(|doc, parent, fonts| {
        let fm = doc.new_object_id();
        let resources = dictionary! { "XObject" => dictionary! { "Fm0" => fm } };
        doc.objects.insert(
            fm,
            Object::Stream(form(invoke(&["Fm0"]), Some(resources.clone()))),
        );
        let bad = page(doc, parent, invoke(&["Fm0"]), resources);
        let good = page(
            doc,
            parent,
            text_ops("Halaman yang baik"),
            dictionary! { "Font" => fonts.clone() },
        );
        vec![bad, good]
    });
    assert_eq!(quick(&bytes).unwrap(), "Halaman yang baik");
}

#[test]
fn form_inheriting_the_page_resources_cycles_too() {
    let bytes = build(|doc, parent, _| {
        let fm = doc.new_object_id();
        doc.objects
            .insert(fm, Object::Stream(form(invoke(&["Fm0"]), None)));
        let resources = dictionary! { "XObject" => dictionary! { "Fm0" => fm } };
        vec![page(doc, parent, invoke(&["Fm0"]), resources)]
    });
    let err = quick(&bytes).unwrap_err();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn fan_out_of_forms_is_refused() {
    let bytes = build(|doc, parent, _| {
        // Fm0 invokes Fm1 twice, Fm1 invokes Fm2 twice, …: 2^30 invocations, 30 deep.
        let ids: Vec<ObjectId> = (0..31).map(|_| doc.new_object_id()).collect();
        for i in 0..30 {
            let resources = dictionary! { "XObject" => dictionary! { "N" => ids[i + 1] } };
            doc.objects.insert(
                ids[i],
                Object::Stream(form(invoke(&["N", "N"]), Some(resources))),
            );
        }
        doc.objects
            .insert(ids[30], Object::Stream(form(vec![], None)));
        let resources = dictionary! { "XObject" => dictionary! { "N" => ids[0] } };
        vec![page(doc, parent, invoke(&["N"]), resources)]
    });
    let err = quick(&bytes).unwrap_err();
    assert!(err.contains("invocations"), "{err}");
}

#[test]
fn nested_form_with_text_is_read() {
    let bytes = build(|doc, parent, fonts| {
        let inner = doc.add_object(form(
            text_ops("Teks dalam borang"),
            Some(dictionary! { "Font" => fonts.clone() }),
        ));
        let outer = doc.add_object(form(
            invoke(&["In"]),
            Some(dictionary! { "XObject" => dictionary! { "In" => inner } }),
        ));
        let resources = dictionary! { "XObject" => dictionary! { "Out" => outer } };
        vec![page(doc, parent, invoke(&["Out"]), resources)]
    });
    assert_eq!(quick(&bytes).unwrap(), "Teks dalam borang");
}

#[test]
fn looping_parent_chain_without_media_box_is_skipped() {
    let bytes = build(|doc, _parent, fonts| {
        let id = doc.new_object_id();
        let content_id = doc.add_object(Stream::new(dictionary! {}, text_ops("x")));
        // No MediaBox anywhere, and the page is its own parent.
        let page = dictionary! {
            "Type" => "Page", "Parent" => id, "Contents" => content_id,
            "Resources" => dictionary! { "Font" => fonts.clone() },
        };
        doc.objects.insert(id, Object::Dictionary(page.clone()));
        vec![page]
    });
    let err = quick(&bytes).unwrap_err();
    assert!(err.contains("loops") || err.contains("PDF"), "{err}");
}

/// Found by fuzzing: pdf-extract panics (`expect("MediaBox")`, `wrong type`, an index out of
/// bounds) on a page without a MediaBox, with a non-number in it, or with a short ArtBox. The
/// panic was caught, but such a page is now a typed failure before pdf-extract sees it.
#[test]
fn pages_with_unusable_boxes_are_typed_failures_not_panics() {
    let bytes = build(|doc, parent, fonts| {
        let content_id = doc.add_object(Stream::new(dictionary! {}, text_ops("Tiada kotak")));
        vec![dictionary! {
            "Type" => "Page", "Parent" => parent, "Contents" => content_id,
            "Resources" => dictionary! { "Font" => fonts.clone() },
        }]
    });
    let err = parse(Format::Pdf, &bytes, &ParseLimits::default()).unwrap_err();
    assert!(
        matches!(&err, ParseError::Pdf(m) if m.contains("MediaBox")),
        "{err:?}"
    );

    let bytes = build(|doc, parent, fonts| {
        let font = dictionary! { "Font" => fonts.clone() };
        let mut short_art = page(doc, parent, text_ops("Kotak pendek"), font.clone());
        short_art.set("ArtBox", vec![0.into(), 0.into()]);
        let mut odd_media = page(doc, parent, text_ops("Kotak pelik"), font.clone());
        odd_media.set(
            "MediaBox",
            vec![0.into(), 0.into(), 595.into(), Object::Reference((999, 0))],
        );
        let good = page(doc, parent, text_ops("Halaman yang baik"), font);
        vec![short_art, odd_media, good]
    });
    assert_eq!(quick(&bytes).unwrap(), "Halaman yang baik");
}
