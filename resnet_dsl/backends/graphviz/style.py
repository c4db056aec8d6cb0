"""How a diagram looks: fonts, colours and line styles, in one place.

Shortcuts are told apart by more than colour (a reader may print in grey or be colour
blind): identity is a plain thin line, zero-pad a dashed one, projections bold, and the
avg-pool projection bold in another colour with its pool in the shortcut box. The
palette is draw.io's pastel set, which stays readable on white and in print.
"""

from __future__ import annotations

# DejaVu first: its arrow (→) is legible at small sizes where Liberation Sans's is not;
# viewers without it fall back to Helvetica/Arial.
FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"

GRAPH = {
    "fontname": FONT,
    "fontsize": "16",
    "labelloc": "t",
    "labeljust": "c",
    "nodesep": "0.3",
    "ranksep": "0.32",
    "newrank": "true",
    "ordering": "out",  # see emit.py: titles on the left, shortcuts on the right
    "bgcolor": "white",
    "pad": "0.3",
}
NODE = {
    "fontname": FONT,
    "fontsize": "11",
    "shape": "box",
    "style": "rounded,filled",
    "penwidth": "1.2",
    "margin": "0.12,0.06",
}
# One box per layer: smaller boxes and tighter ranks keep a 20-layer net on a page.
GRAPH_EXPANDED = {"ranksep": "0.2", "nodesep": "0.25"}
NODE_EXPANDED = {"fontsize": "10", "height": "0.3", "margin": "0.1,0.03"}

EDGE = {"fontname": FONT, "fontsize": "9", "fontcolor": "#333333", "arrowsize": "0.6",
        "color": "#333333", "penwidth": "1.2"}

# fill, border per box role
BOX = {
    "input": ("#ffffff", "#333333"),
    "output": ("#ffffff", "#333333"),
    "stem": ("#eeeeee", "#666666"),
    "head": ("#eeeeee", "#666666"),
    "body": ("#eeeeee", "#666666"),
    "pre": ("#fff2cc", "#d6b656"),
    "main": ("#dae8fc", "#6c8ebf"),
    "post": ("#dae8fc", "#6c8ebf"),
    "add": ("#ffffff", "#333333"),
    "gate": ("#d5e8d4", "#82b366"),
    "mul": ("#ffffff", "#333333"),
    "part": ("#dae8fc", "#6c8ebf"),
    "cat": ("#ffffff", "#333333"),
}

# A gate (side branch) is green and its line dotted: it scales the path rather than adding
# to it, and no shortcut is dotted, so it stays apart from them in grey print too.
GATE_LINE = {"color": "#82b366", "style": "dotted", "penwidth": "1.6", "arrowsize": "0.5",
             "weight": "1"}

# per shortcut kind: box fill, border/line colour, line style, line width
SHORTCUT = {
    "identity": ("#ffffff", "#666666", "solid", "1.0"),
    "zeropad": ("#ffe6cc", "#d79b00", "dashed", "1.6"),
    "proj": ("#f8cecc", "#b85450", "solid", "2.6"),
    "avgproj": ("#e1d5e7", "#9673a6", "solid", "2.6"),
}

LEGEND = {
    "identity": "identity: the input, unchanged",
    "zeropad": "zero-pad (A): subsample, append zero channels",
    "proj": "projection (B/C): 1x1 conv (+ BN)",
    "avgproj": "avg-pool projection (D): avgpool, 1x1 conv + BN",
}

CLUSTER = {
    # fill, border, style
    "stage": ("#f7f9fc", "#8c9bb0", "rounded,filled"),
    "block": ("#ffffff", "#b0b0b0", "rounded,filled,dashed"),
    "gate": ("#f4faf1", "#82b366", "rounded,filled,dotted"),
    "stem": ("#fafafa", "#b0b0b0", "rounded,filled"),
    "head": ("#fafafa", "#b0b0b0", "rounded,filled"),
    "legend": ("#ffffff", "#b0b0b0", "rounded"),
}


# `+ relu`: an addition with the layers after it, in the collapsed view
ADD_WITH_POST = {"shape": "ellipse", "fixedsize": "false", "width": "0.3", "height": "0.3",
                 "fontsize": "11", "margin": "0.05,0.02"}


def node_attrs(role: str, shortcut: str | None) -> dict[str, str]:
    """Graphviz attributes for a box."""
    if role == "shortcut" and shortcut in SHORTCUT:
        fill, line, dash, _ = SHORTCUT[shortcut]
        style = "rounded,filled,dashed" if dash == "dashed" else "rounded,filled"
        return {"fillcolor": fill, "color": line, "style": style}
    fill, line = BOX.get(role, BOX["main"])
    attrs = {"fillcolor": fill, "color": line}
    if role in ("add", "mul"):  # `+` and `×` in a circle
        attrs.update(shape="circle", width="0.3", height="0.3", fixedsize="true",
                     fontsize="14", margin="0")
    elif role == "cat":  # the parts of a split concatenated
        attrs.update(shape="ellipse", width="0.3", height="0.3", fontsize="10", margin="0.04,0.02")
    elif role in ("input", "output"):
        attrs.update(shape="oval", style="filled")
    return attrs


def edge_attrs(kind: str) -> dict[str, str]:
    """Graphviz attributes for an edge: the residual path, or a shortcut of a kind."""
    if kind == "gate":
        return dict(GATE_LINE)
    if kind not in SHORTCUT:
        # A heavy main path keeps the spine of the network straight; shortcuts bend around it.
        return {"weight": "8"}
    _, line, dash, width = SHORTCUT[kind]
    return {"color": line, "style": dash, "penwidth": width, "arrowsize": "0.5"}
