module storage 'br/public:avm/res/storage/storage-account:latest' = {
  name: 'storage'
}
