"""Small talk and the language of a question: recognised before matching, never logged.

"hi", "thanks", "ok", "are you a bot?" or a row of emoji are not questions the team
should see as unanswered: each gets a short, kind reply with a way on. Only a message
that is small talk *and nothing else* counts ("hi, what is the OET?" is a question).
"""

from __future__ import annotations

import re

from bot.text import normalize

_INTENTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("greeting", (
        "hi", "hii", "hiii", "hello", "helo", "hey", "heya", "hey there", "hi there",
        "hello there", "good morning", "good afternoon", "good evening", "gm", "yo", "sup",
        "whats up", "namaste", "salam", "salaam", "assalamualaikum", "assalamu alaikum",
        "hola", "bonjour", "ola", "oi", "hallo", "greetings", "hello bot", "hi bot",
        "how are you", "how are you today", "how r u", "how are u", "hows it going",
        "how is it going", "test", "testing", "hello how are you", "hi how are you",
    )),
    ("thanks", (
        "thanks", "thank you", "thank u", "thx", "ty", "tysm", "thanks a lot",
        "thank you so much", "many thanks", "thanks bot", "great thanks", "ok thanks",
        "ok thank you", "shukriya", "dhanyavad", "gracias", "merci", "obrigado", "obrigada",
        "shukran", "cheers", "appreciate it", "thanks for the help", "that helps",
        "that helped", "helpful thanks",
    )),
    ("goodbye", (
        "bye", "goodbye", "good bye", "see you", "see ya", "cya", "good night", "gn",
        "bye bye", "take care", "adios", "au revoir", "tchau", "later",
    )),
    ("bot", (
        "are you a bot", "are you human", "are you a real person", "are you real",
        "who are you", "what are you", "who made you", "who built you", "who created you",
        "what can you do", "what do you do", "is this a bot", "am i talking to a bot",
        "are you ai", "are you an ai", "are you chatgpt", "whats your name",
        "what is your name", "your name", "are you a real person or a bot",
        "are you a person or a bot", "am i talking to a human",
    )),
    # Questions about the user's own place on the road: answered from their progress.
    ("my_step", (
        "what should i do next", "what do i do next", "what should i do now", "what now",
        "what next", "whats next", "what is next", "what is my next step",
        "whats my next step", "my next step", "next step", "my next steps", "next steps",
        "where am i", "where am i now", "where am i in the process", "where do i stand",
        "what step am i on", "which step am i on", "my status", "my progress",
        "what is my progress", "what do i need to do next", "what should i do next step",
        "what is my status", "where did i stop", "where did i leave off",
    )),
    ("ack", (
        "ok", "okay", "okk", "k", "kk", "cool", "nice", "great", "good", "fine", "alright",
        "got it", "i see", "understood", "sure", "yes", "yeah", "yep", "no", "nope", "hmm",
        "hmmm", "lol", "haha", "wow", "awesome", "perfect", "noted", "ok got it", "oh ok",
        "ah ok", "ok cool", "fine thanks",
    )),
)
_LOOKUP = {phrase: intent for intent, phrases in _INTENTS for phrase in phrases}
#: A longer thank-you ("thank you so much, that helped a lot") is still thanks, unless it
#: goes on to ask something.
_THANKS_OPENINGS = ("thanks", "thank you", "thank u", "thx", "many thanks")
_ASKING = frozenset(
    {
        "how", "what", "when", "where", "why", "which", "who", "can", "could", "do", "does",
        "is", "are", "will", "would", "should", "may", "but", "also", "please",
    }
)
_REPEATS = re.compile(r"(.)\1{2,}")
_HAS_WORD = re.compile(r"\w")

REPLIES = {
    "greeting": "Hello! I answer questions about ECFMG certification, USMLE, residency "
    "applications, the Match and visas for international medical graduates, and about "
    "applying to medical school in Canada. What would you like to know?",
    "thanks": "You're welcome! Ask me anything else whenever you need.",
    "goodbye": "Good luck with your journey! I'm here whenever you need me.",
    "bot": "I'm IMG Guide, an automated assistant (not a person, and not an official "
    "ECFMG/Intealth service). I answer common questions for international medical "
    "graduates heading to a US residency, with the official source for each answer.",
    "ack": "Anything else I can help with? Ask a question, or browse the topics.",
    "emoji": "🙂 Ask me a question in words, or browse the topics.",
}


def small_talk(message: str) -> str | None:
    """Return the small-talk intent of a whole message, or None for anything else."""
    if len(message) > 80:
        return None
    if not _HAS_WORD.search(message):
        return "emoji" if message.strip() else None
    folded = _REPEATS.sub(r"\1\1", normalize(message))
    for form in (folded, _REPEATS.sub(r"\1", folded), folded.removesuffix(" bot")):
        if form in _LOOKUP:
            return _LOOKUP[form]
    words = folded.split()
    if (
        folded.startswith(_THANKS_OPENINGS)
        and len(words) <= 10
        and "?" not in message
        and not _ASKING & set(words)
    ):
        return "thanks"
    return None


#: Function words of the languages applicants often write in, besides English.
_FOREIGN_TEXT = """
    que qué como cómo para por donde dónde cuando cuándo cuanto cuánto cuesta puedo necesito
    tengo soy los las del una unos hacer examen residencia medico médico estados unidos
    quiero saber sobre pero tambien también est-ce quel quelle comment pourquoi combien dois
    je suis mon pour avec faire les une sont médecin résidence examen
    preciso posso quanto custa onde quando fazer voce você não nao meu minha sou residência
    kya hai hain kaise kaun kab kitna kitne mujhe mera meri karna chahiye batao kyu kyun
    aur nahi nahin ke liye hoga kar sakta sakti
"""
_FOREIGN = frozenset(_FOREIGN_TEXT.split())
_NON_LATIN = re.compile(r"[\u0400-\u04ff\u0590-\u06ff\u0900-\u097f\u4e00-\u9fff\u3040-\u30ff]")


def looks_non_english(message: str) -> bool:
    """Tell whether a question seems written in another language (or a mix, like Hinglish)."""
    if _NON_LATIN.search(message):
        return True
    words = normalize(message).split()
    foreign = sum(1 for w in words if w in _FOREIGN)
    return foreign >= 2 or (len(words) <= 4 and foreign >= 1 and len(words) > 0)
