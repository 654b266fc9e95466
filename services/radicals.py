"""CJK radicals read as the ideographs they stand for: ⻛ (U+2EDB) is 风 (U+98CE), ⻓ is 长.

Some fonts (Noto CJK, Source Han) draw an ideograph and its radical with one glyph, and a PDF's
text layer then may give the radical's code point: a page that shows 东风村 reads 东⻛村. NFKC
already turns the Kangxi Radicals (U+2F00–U+2FD5) into ideographs; the CJK Radicals Supplement
(U+2E80–U+2EFF) has no decomposition, so it is folded here with Unicode's own
Equivalent_Unified_Ideograph property. One character becomes one character (positions in a text
stay where they were); U+2E80 CJK RADICAL REPEAT has no equivalent and stays.

Nothing but the standard library is imported: the extracting child process uses this too.
"""

from __future__ import annotations

import re

__all__ = ["RADICAL", "RADICAL_IDEOGRAPHS", "fold_radicals"]

# The CJK Radicals Supplement lines (U+2E81..U+2EF3) of EquivalentUnifiedIdeograph.txt, Unicode
# Character Database 17.0.0 (https://www.unicode.org/Public/17.0.0/ucd/EquivalentUnifiedIdeograph.txt).
# © Unicode®, Inc. Unicode and the Unicode Logo are registered trademarks of Unicode, Inc. in the
# U.S. and other countries. Used under the Unicode License v3: https://www.unicode.org/license.txt
_EQUIVALENT_UNIFIED_IDEOGRAPH = """\
2E81       ; 5382  #     CJK RADICAL CLIFF
2E82       ; 4E5B  #     CJK RADICAL SECOND ONE
2E83       ; 4E5A  #     CJK RADICAL SECOND TWO
2E84       ; 4E59  #     CJK RADICAL SECOND THREE
2E85       ; 4EBB  #     CJK RADICAL PERSON
2E86       ; 5182  #     CJK RADICAL BOX
2E87       ; 20628 #     CJK RADICAL TABLE
2E88       ; 5200  #     CJK RADICAL KNIFE ONE
2E89       ; 5202  #     CJK RADICAL KNIFE TWO
2E8A       ; 535C  #     CJK RADICAL DIVINATION
2E8B       ; 353E  #     CJK RADICAL SEAL
2E8C..2E8D ; 5C0F  # [2] CJK RADICAL SMALL ONE..CJK RADICAL SMALL TWO
2E8E       ; 5140  #     CJK RADICAL LAME ONE
2E8F       ; 5C23  #     CJK RADICAL LAME TWO
2E90       ; 5C22  #     CJK RADICAL LAME THREE
2E91       ; 21BC2 #     CJK RADICAL LAME FOUR
2E92       ; 5DF3  #     CJK RADICAL SNAKE
2E93       ; 5E7A  #     CJK RADICAL THREAD
2E94       ; 5F51  #     CJK RADICAL SNOUT ONE
2E95       ; 2B739 #     CJK RADICAL SNOUT TWO
2E96       ; 5FC4  #     CJK RADICAL HEART ONE
2E97       ; 5FC3  #     CJK RADICAL HEART TWO
2E98       ; 624C  #     CJK RADICAL HAND
2E99       ; 6535  #     CJK RADICAL RAP
2E9B       ; 65E1  #     CJK RADICAL CHOKE
2E9C       ; 65E5  #     CJK RADICAL SUN
2E9D       ; 6708  #     CJK RADICAL MOON
2E9E       ; 6B7A  #     CJK RADICAL DEATH
2E9F       ; 6BCD  #     CJK RADICAL MOTHER
2EA0       ; 6C11  #     CJK RADICAL CIVILIAN
2EA1       ; 6C35  #     CJK RADICAL WATER ONE
2EA2       ; 6C3A  #     CJK RADICAL WATER TWO
2EA3       ; 706C  #     CJK RADICAL FIRE
2EA4..2EA5 ; 722B  # [2] CJK RADICAL PAW ONE..CJK RADICAL PAW TWO
2EA6       ; 4E2C  #     CJK RADICAL SIMPLIFIED HALF TREE TRUNK
2EA7       ; 725B  #     CJK RADICAL COW
2EA8       ; 72AD  #     CJK RADICAL DOG
2EA9       ; 738B  #     CJK RADICAL JADE
2EAA       ; 24D14 #     CJK RADICAL BOLT OF CLOTH
2EAB       ; 76EE  #     CJK RADICAL EYE
2EAC       ; 793A  #     CJK RADICAL SPIRIT ONE
2EAD       ; 793B  #     CJK RADICAL SPIRIT TWO
2EAE       ; 25AD7 #     CJK RADICAL BAMBOO
2EAF       ; 7CF9  #     CJK RADICAL SILK
2EB0       ; 7E9F  #     CJK RADICAL C-SIMPLIFIED SILK
2EB1       ; 7F53  #     CJK RADICAL NET ONE
2EB2       ; 7F52  #     CJK RADICAL NET TWO
2EB3       ; 34C1  #     CJK RADICAL NET THREE
2EB4       ; 5197  #     CJK RADICAL NET FOUR
2EB5       ; 2626B #     CJK RADICAL MESH
2EB6       ; 7F8A  #     CJK RADICAL SHEEP
2EB7       ; 2634C #     CJK RADICAL RAM
2EB8       ; 2634B #     CJK RADICAL EWE
2EB9       ; 8002  #     CJK RADICAL OLD
2EBA       ; 8080  #     CJK RADICAL BRUSH ONE
2EBB       ; 807F  #     CJK RADICAL BRUSH TWO
2EBC       ; 8089  #     CJK RADICAL MEAT
2EBD       ; 26951 #     CJK RADICAL MORTAR
2EBE..2EC0 ; 8279  # [3] CJK RADICAL GRASS ONE..CJK RADICAL GRASS THREE
2EC1       ; 864E  #     CJK RADICAL TIGER
2EC2       ; 8864  #     CJK RADICAL CLOTHES
2EC3       ; 8980  #     CJK RADICAL WEST ONE
2EC4       ; 897F  #     CJK RADICAL WEST TWO
2EC5       ; 89C1  #     CJK RADICAL C-SIMPLIFIED SEE
2EC6       ; 89D2  #     CJK RADICAL SIMPLIFIED HORN
2EC7       ; 278B2 #     CJK RADICAL HORN
2EC8       ; 8BA0  #     CJK RADICAL C-SIMPLIFIED SPEECH
2EC9       ; 8D1D  #     CJK RADICAL C-SIMPLIFIED SHELL
2ECA       ; 27FB7 #     CJK RADICAL FOOT
2ECB       ; 8F66  #     CJK RADICAL C-SIMPLIFIED CART
2ECC..2ECE ; 8FB6  # [3] CJK RADICAL SIMPLIFIED WALK..CJK RADICAL WALK TWO
2ECF       ; 9091  #     CJK RADICAL CITY
2ED0       ; 9485  #     CJK RADICAL C-SIMPLIFIED GOLD
2ED1       ; 9577  #     CJK RADICAL LONG ONE
2ED2       ; 9578  #     CJK RADICAL LONG TWO
2ED3       ; 957F  #     CJK RADICAL C-SIMPLIFIED LONG
2ED4       ; 95E8  #     CJK RADICAL C-SIMPLIFIED GATE
2ED5       ; 28E0F #     CJK RADICAL MOUND ONE
2ED6       ; 961D  #     CJK RADICAL MOUND TWO
2ED7       ; 96E8  #     CJK RADICAL RAIN
2ED8       ; 9752  #     CJK RADICAL BLUE
2ED9       ; 97E6  #     CJK RADICAL C-SIMPLIFIED TANNED LEATHER
2EDA       ; 9875  #     CJK RADICAL C-SIMPLIFIED LEAF
2EDB       ; 98CE  #     CJK RADICAL C-SIMPLIFIED WIND
2EDC       ; 98DE  #     CJK RADICAL C-SIMPLIFIED FLY
2EDD       ; 98DF  #     CJK RADICAL EAT ONE
2EDE       ; 2967F #     CJK RADICAL EAT TWO
2EDF       ; 98E0  #     CJK RADICAL EAT THREE
2EE0       ; 9963  #     CJK RADICAL C-SIMPLIFIED EAT
2EE1       ; 29810 #     CJK RADICAL HEAD
2EE2       ; 9A6C  #     CJK RADICAL C-SIMPLIFIED HORSE
2EE3       ; 9AA8  #     CJK RADICAL BONE
2EE4       ; 9B3C  #     CJK RADICAL GHOST
2EE5       ; 9C7C  #     CJK RADICAL C-SIMPLIFIED FISH
2EE6       ; 9E1F  #     CJK RADICAL C-SIMPLIFIED BIRD
2EE7       ; 5364  #     CJK RADICAL C-SIMPLIFIED SALT
2EE8       ; 9EA6  #     CJK RADICAL SIMPLIFIED WHEAT
2EE9       ; 9EC4  #     CJK RADICAL SIMPLIFIED YELLOW
2EEA       ; 9EFE  #     CJK RADICAL C-SIMPLIFIED FROG
2EEB       ; 6589  #     CJK RADICAL J-SIMPLIFIED EVEN
2EEC       ; 9F50  #     CJK RADICAL C-SIMPLIFIED EVEN
2EED       ; 6B6F  #     CJK RADICAL J-SIMPLIFIED TOOTH
2EEE       ; 9F7F  #     CJK RADICAL C-SIMPLIFIED TOOTH
2EEF       ; 7ADC  #     CJK RADICAL J-SIMPLIFIED DRAGON
2EF0       ; 9F99  #     CJK RADICAL C-SIMPLIFIED DRAGON
2EF1       ; 9F9C  #     CJK RADICAL TURTLE
2EF2       ; 4E80  #     CJK RADICAL J-SIMPLIFIED TURTLE
2EF3       ; 9F9F  #     CJK RADICAL C-SIMPLIFIED TURTLE
"""


def _table(lines: str) -> dict[int, str]:
    table: dict[int, str] = {}
    for line in lines.splitlines():
        fields = line.partition("#")[0]
        if not fields.strip():
            continue
        code_points, ideograph = (field.strip() for field in fields.split(";"))
        first, _, last = code_points.partition("..")
        for code in range(int(first, 16), int(last or first, 16) + 1):
            table[code] = chr(int(ideograph, 16))
    return table


# Each radical's code point → its equivalent unified ideograph, as ``str.translate`` takes it.
RADICAL_IDEOGRAPHS = _table(_EQUIVALENT_UNIFIED_IDEOGRAPH)
RADICAL = re.compile("[\u2e81-\u2ef3]")  # where the radicals with an equivalent are


def fold_radicals(text: str) -> str:
    """``text`` with each CJK Radicals Supplement character that has one as its ideograph."""
    if RADICAL.search(text) is None:  # the usual case: no radical at all, checked fast
        return text
    # Radicals are a few characters of a text: replacing them one by one is several times faster
    # than translating every character.
    return RADICAL.sub(_ideograph, text)


def _ideograph(match: re.Match[str]) -> str:
    radical = match.group()
    return RADICAL_IDEOGRAPHS.get(ord(radical), radical)  # U+2E9A is unassigned
