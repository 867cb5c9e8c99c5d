//! Class names: COCO's 80 in YOLO/CenterNet order, and the TF Object Detection API's 90-id map.

/// The 80 COCO class names in the order YOLO and CenterNet models use (contiguous ids 0..80).
pub const COCO80: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// The TF Object Detection API's COCO label map as [`super::Profile::labels`] for ids 1..=90
/// (`first_class` 1): the 80 [`COCO80`] names at their original COCO ids, and the ten ids the
/// 2014 paper defined but never annotated under their paper names.
pub fn coco90_labels() -> Vec<String> {
    const UNUSED: [(usize, &str); 10] = [
        (12, "street sign"),
        (26, "hat"),
        (29, "shoe"),
        (30, "eye glasses"),
        (45, "plate"),
        (66, "mirror"),
        (68, "window"),
        (69, "desk"),
        (71, "door"),
        (83, "blender"),
    ];
    let mut names = COCO80.iter();
    (1..=90)
        .map(|id| match UNUSED.iter().find(|(u, _)| *u == id) {
            Some((_, n)) => n.to_string(),
            None => names.next().map_or_else(|| format!("class {id}"), |s| s.to_string()),
        })
        .collect()
}

/// [`COCO80`] as owned strings, for [`super::Profile::labels`].
pub fn coco80_labels() -> Vec<String> {
    COCO80.iter().map(|s| s.to_string()).collect()
}
