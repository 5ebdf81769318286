"""Names for containers created without one: adjective_surname, as Docker makes them."""

from __future__ import annotations

import random
from typing import Callable

_LEFT = ("admiring", "adoring", "affectionate", "agitated", "amazing", "angry", "awesome", "beautiful",
         "blissful", "bold", "boring", "brave", "busy", "charming", "clever", "compassionate", "competent",
         "condescending", "confident", "cool", "cranky", "crazy", "dazzling", "determined", "distracted",
         "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant", "eloquent", "epic", "exciting",
         "fervent", "festive", "flamboyant", "focused", "friendly", "frosty", "funny", "gallant", "gifted",
         "goofy", "gracious", "great", "happy", "hardcore", "heuristic", "hopeful", "hungry", "infallible",
         "inspiring", "intelligent", "interesting", "jolly", "jovial", "keen", "kind", "laughing", "loving",
         "lucid", "magical", "modest", "musing", "mystifying", "naughty", "nervous", "nice", "nifty",
         "nostalgic", "objective", "optimistic", "peaceful", "pedantic", "pensive", "practical", "priceless",
         "quirky", "quizzical", "recursing", "relaxed", "reverent", "romantic", "sad", "serene", "sharp",
         "silly", "sleepy", "stoic", "strange", "stupefied", "suspicious", "sweet", "tender", "thirsty",
         "trusting", "unruffled", "upbeat", "vibrant", "vigilant", "vigorous", "wizardly", "wonderful",
         "xenodochial", "youthful", "zealous", "zen")
_RIGHT = ("agnesi", "albattani", "allen", "almeida", "archimedes", "ardinghelli", "aryabhata", "austin",
          "babbage", "banach", "bardeen", "bartik", "bassi", "bell", "bhabha", "bhaskara", "blackwell", "bohr",
          "booth", "borg", "bose", "boyd", "brahmagupta", "brattain", "brown", "carson", "chandrasekhar",
          "chatelet", "clarke", "colden", "cori", "cray", "curie", "darwin", "davinci", "dijkstra", "dubinsky",
          "easley", "einstein", "elion", "engelbart", "euclid", "euler", "fermat", "fermi", "feynman",
          "franklin", "galileo", "gates", "goldberg", "goldstine", "goldwasser", "goodall", "hamilton",
          "haslett", "hawking", "heisenberg", "hermann", "hodgkin", "hoover", "hopper", "hypatia", "jang",
          "jennings", "jepsen", "joliot", "jones", "kalam", "kare", "keller", "kepler", "khorana", "kilby",
          "kirch", "knuth", "kowalevski", "lalande", "lamarr", "lamport", "leakey", "leavitt", "lehmann",
          "lewin", "lichterman", "liskov", "lovelace", "lumiere", "mahavira", "mayer", "mccarthy", "mcclintock",
          "mclean", "meitner", "mendel", "mendeleev", "minsky", "mirzakhani", "morse", "murdock", "napier",
          "nash", "neumann", "newton", "nightingale", "nobel", "noether", "northcutt", "noyce", "panini",
          "pare", "pasteur", "payne", "perlman", "pike", "poincare", "poitras", "ptolemy", "raman",
          "ramanujan", "ride", "ritchie", "robinson", "roentgen", "rosalind", "saha", "sammet", "shamir",
          "shannon", "shaw", "shirley", "shockley", "sinoussi", "snyder", "spence", "stonebraker",
          "sutherland", "swanson", "swartz", "swirles", "tesla", "thompson", "torvalds", "turing", "varahamihira",
          "visvesvaraya", "volhard", "wescoff", "wiles", "williams", "wilson", "wing", "wozniak", "wright",
          "yalow", "yonath")


def random_name(taken: Callable[[str], bool]) -> str:
    """A free adjective_surname; a digit is added after collisions, as Docker does."""
    for attempt in range(100):
        name = f"{random.choice(_LEFT)}_{random.choice(_RIGHT)}"
        if attempt > 3:
            name += str(random.randint(0, 9))
        if name != "boring_wozniak" and not taken(name):  # Steve Wozniak is not boring (moby's rule)
            return name
    raise RuntimeError("no free container name")
